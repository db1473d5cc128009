"""Definition files: round trip, and a writer killed half-way never leaves a torn file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.builtin import REPO
from vmgui.backends.builtin.definitions import Definition, DefinitionStore
from vmgui.model import DiskConfig, VmConfig

VM_ID = "0b4f3a52-7a0e-4a51-9d7e-2d4c2a4c8b11"

WRITER = f"""
import sys
from pathlib import Path
from vmgui.backends.builtin.definitions import Definition, DefinitionStore
store = DefinitionStore(Path(sys.argv[1]))
n = 0
print("ready", flush=True)
while True:
    n += 1
    # Big enough that a write takes many syscalls: a torn file would be caught.
    store.save(Definition(vm_id="{VM_ID}", name=f"vm-{{n}}", cmdline="x" * 200_000))
"""


def test_round_trip(tmp_path: Path) -> None:
    store = DefinitionStore(tmp_path)
    d = Definition.from_config(
        VmConfig(name="a", memory_mib=64, iso="/x.iso", disks=[DiskConfig("/d.img", False, 1)])
    )
    store.save(d)
    (loaded,) = store.load_all()
    assert loaded == d
    assert loaded.firmware == "seabios" and loaded.created_disks == ["/d.img"]
    assert os.stat(store.path(d.vm_id)).st_mode & 0o777 == 0o600


def test_bad_files_are_skipped_not_fatal(tmp_path: Path) -> None:
    store = DefinitionStore(tmp_path)
    good = Definition(vm_id=VM_ID, name="good")
    store.save(good)
    (tmp_path / "1d5b8a2e-0000-4000-8000-000000000000.json").write_text("{not json")
    (tmp_path / "2d5b8a2e-0000-4000-8000-000000000000.json").write_text('{"version": 1}')
    assert store.load_all() == [good]


def test_definition_write_killed_half_way_is_never_torn(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    names: set[str] = set()
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(0.15)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        loaded = DefinitionStore(tmp_path).load_all()
        assert len(loaded) == 1, "the definition was lost or torn"
        assert loaded[0].cmdline == "x" * 200_000
        names.add(loaded[0].name)
    assert len(names) > 1  # the writer really was interrupted at different points


def test_builtin_backend_has_the_optional_abilities_the_wizard_uses() -> None:
    """The wizard tests these with isinstance (typed protocols in base.py, no getattr)."""
    from vmgui.backends.base import Backend, DemoSources, SourceChecks
    from vmgui.backends.builtin import BuiltinBackend

    backend = BuiltinBackend()
    assert isinstance(backend, Backend)
    assert isinstance(backend, SourceChecks) and isinstance(backend, DemoSources)
