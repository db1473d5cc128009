"""`vmgui create|start|shutdown|destroy|delete` as real processes against the built-in VMM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.builtin import BuiltinEnv
from tests.support import need_kvm

Build = Callable[..., Path]


def vmgui(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(var, None)
    prog = "import sys; from vmgui.app import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", prog, *args], env=env, capture_output=True,
                          text=True, timeout=60)


def states() -> dict[str, str]:
    out = vmgui("list", "--connect", "builtin:///", "--json")
    assert out.returncode == 0, out.stderr
    return {row["name"]: row["state"] for row in json.loads(out.stdout)}


def wait_for(name: str, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while states().get(name) != state:
        assert time.monotonic() < deadline, f"{name} never became {state}: {states()}"
        time.sleep(0.2)


@pytest.mark.slow
def test_create_start_shutdown_destroy_delete(
    builtin_env: BuiltinEnv, build_guest: Build, tmp_path: Path
) -> None:
    need_kvm()
    kernel = build_guest("power_button")
    disk = tmp_path / "d.img"
    made = vmgui("create", "--name", "cli-vm", "--kernel", str(kernel), "--memory", "32M",
                 "--disk", f"{disk},size=1G")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Created cli-vm")
    assert disk.stat().st_size == 1 << 30
    assert states() == {"cli-vm": "shut off"}

    started = vmgui("start", "cli-vm")
    assert started.returncode == 0, started.stderr
    assert states() == {"cli-vm": "running"}  # the VMM outlived the command
    assert vmgui("shutdown", "cli-vm").returncode == 0
    wait_for("cli-vm", "shut off")

    assert vmgui("start", "cli-vm").returncode == 0
    assert vmgui("destroy", "cli-vm").returncode == 0
    assert states() == {"cli-vm": "shut off"}
    gone = vmgui("delete", "cli-vm", "--storage")
    assert gone.returncode == 0, gone.stderr
    assert not disk.exists() and states() == {}


def test_errors_are_one_sentence(builtin_env: BuiltinEnv, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"x" * 4096)
    bad = vmgui("create", "--name", "x", "--kernel", str(junk))
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "not a bzImage or PVH ELF" in bad.stderr
    missing = vmgui("start", "nobody")
    assert missing.returncode == 1 and "no VM named “nobody”" in missing.stderr
    both = vmgui("create", "--name", "x", "--kernel", str(junk), "--iso", str(junk))
    assert both.returncode == 2
    size = vmgui("create", "--name", "x", "--kernel", str(junk), "--memory", "lots")
    assert size.returncode == 1 and "memory size 'lots'" in size.stderr
