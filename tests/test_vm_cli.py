"""`vmgui create|start|shutdown|reboot|reset|destroy|delete` as real processes against the
built-in VMM."""

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
from tests.support import need_kvm, need_tool
from vmgui.backends.builtin.launcher import RuntimeFiles

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
def test_create_start_shutdown_reboot_reset_destroy_delete(
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
    vm_id = made.stdout.split("(")[1].rstrip(")\n")
    serial = RuntimeFiles.for_vm(vm_id).serial_file

    def banners() -> int:
        return serial.read_text(errors="replace").count("waiting for power button")

    wait_until(lambda: banners() == 1)
    rebooted = vmgui("reboot", "cli-vm")
    assert (rebooted.returncode, rebooted.stdout) == (0, "Asked to reboot: cli-vm\n")
    wait_until(lambda: banners() == 2)  # the guest powered off and runs again
    reset = vmgui("reset", "cli-vm")
    assert (reset.returncode, reset.stdout) == (0, "Reset cli-vm\n")
    wait_until(lambda: banners() == 3)
    assert states() == {"cli-vm": "running"}
    assert vmgui("destroy", "cli-vm").returncode == 0
    assert states() == {"cli-vm": "shut off"}
    gone = vmgui("delete", "cli-vm", "--storage")
    assert gone.returncode == 0, gone.stderr
    assert not disk.exists() and states() == {}


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


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


def wait_serial(vm_id_of: Callable[[], str], text: str, timeout: float = 90) -> None:
    from vmgui.backends.builtin.launcher import RuntimeFiles

    path = RuntimeFiles.for_vm(vm_id_of()).serial_file
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"no {text!r} on the serial console: " + (
            path.read_text(errors="replace")[-300:] if path.exists() else "(none)")
        time.sleep(0.2)


@pytest.mark.slow
def test_iso_and_imported_disk_boot_through_firmware(
    builtin_env: BuiltinEnv, tmp_path: Path
) -> None:
    """The Demo's GRUB ISO, as an ISO and dd'ed to a raw disk image: SeaBIOS loads GRUB."""
    need_kvm()
    need_tool("grub-mkrescue")
    from vmgui.backends.builtin.definitions import DefinitionStore
    from vmgui.backends.builtin.demo import build_demo_iso
    from vmgui.backends.builtin.paths import definitions_dir

    iso = build_demo_iso()
    image = tmp_path / "grub.img"
    image.write_bytes(iso.read_bytes())

    def vm_id(name: str) -> Callable[[], str]:
        return lambda: next(d.vm_id for d in DefinitionStore(definitions_dir()).load_all()
                            if d.name == name)

    for name, source in (("from-iso", ["--iso", str(iso)]), ("from-disk", ["--import", str(image)])):
        made = vmgui("create", "--name", name, *source, "--memory", "64M")
        assert made.returncode == 0, made.stderr
        started = vmgui("start", name)
        assert started.returncode == 0, started.stderr
        wait_serial(vm_id(name), "GRUB loading")
        assert states()[name] == "running"
        assert vmgui("destroy", name).returncode == 0
