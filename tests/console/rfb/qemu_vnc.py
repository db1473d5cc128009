"""A QEMU guest with VNC servers for RFB client tests: SeaBIOS, then a GRUB menu built here.

The GRUB ISO (grub-mkrescue at test time) waits in its text-mode menu; its only entry switches
to an 800x600 gfxterm framebuffer and prints a marker, so pressing Enter changes the guest's
resolution. QEMU serves two VNC displays on unix sockets, one without and one with a password,
and QMP for `screendump`, the reference every decoded frame is compared with.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support import need_tool

PASSWORD = "s3cret"
GFX_SIZE = (800, 600)
GRUB_CFG = """\
set timeout=-1
set default=0
menuentry "VMGUI graphics" {
  insmod all_video
  insmod gfxterm
  loadfont unicode
  set gfxmode=800x600x32
  terminal_output gfxterm
  echo "VMGUI-GFX"
  sleep --interruptible 100000
}
"""
START_TIMEOUT_S = 20.0


@dataclass
class QemuVnc:
    vnc: Path  # no password
    locked_vnc: Path  # VNC authentication with PASSWORD
    qmp: Path
    dump: Path
    process: subprocess.Popen[bytes]
    tcp_port: int = 0  # a third, password-less display on 127.0.0.1 when asked for


def build_grub_iso(directory: Path, config: str = GRUB_CFG) -> Path:
    """A BIOS-bootable GRUB ISO whose grub.cfg is `config`."""
    tool = need_tool("grub-mkrescue")
    need_tool("xorriso")
    tree = directory / "iso"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(config)
    iso = directory / "grub.iso"
    subprocess.run([tool, "-o", str(iso), str(tree)], check=True, capture_output=True)
    return iso


@contextlib.contextmanager
def running_qemu(directory: Path, tcp_port: int = 0) -> Iterator[QemuVnc]:
    """QEMU with its displays; `tcp_port` (5900 + N) adds one listening on 127.0.0.1."""
    qemu = need_tool("qemu-system-x86_64")
    iso = build_grub_iso(directory)
    tcp = ["-vnc", f"127.0.0.1:{tcp_port - 5900},id=tcp"] if tcp_port else []
    vm = QemuVnc(
        vnc=directory / "vnc.sock",
        locked_vnc=directory / "locked.sock",
        qmp=directory / "qmp.sock",
        dump=directory / "dump.ppm",
        process=subprocess.Popen(
            [
                qemu, "-display", "none", "-nodefaults", "-no-user-config",
                "-machine", "pc,accel=tcg", "-m", "64", "-vga", "std", "-cdrom", str(iso),
                "-vnc", f"unix:{directory / 'vnc.sock'}", *tcp,
                "-vnc", f"unix:{directory / 'locked.sock'},id=locked,password=on",
                "-qmp", f"unix:{directory / 'qmp.sock'},server=on,wait=off",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ),
        tcp_port=tcp_port,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (vm.qmp.exists() and vm.locked_vnc.exists()):
            if vm.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"QEMU did not start: {vm.process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        yield vm
    finally:
        vm.process.kill()
        vm.process.wait()


def read_ppm(path: Path) -> np.ndarray:
    """QEMU's P6 screendump as (h, w) 0x00RRGGBB."""
    data = path.read_bytes()
    magic, size, _maxval, rgb = data.split(b"\n", 3)
    assert magic == b"P6"
    w, h = map(int, size.split())
    a = np.frombuffer(rgb, dtype=np.uint8).reshape(h, w, 3).astype(np.uint32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


async def screendump(vm: QemuVnc) -> np.ndarray:
    from qemu.qmp import QMPClient

    qmp = QMPClient("rfb-test")
    await qmp.connect(str(vm.qmp))
    try:
        await qmp.execute("screendump", {"filename": str(vm.dump)})
    finally:
        await qmp.disconnect()
    return read_ppm(vm.dump)


def differing(frame: np.ndarray, reference: np.ndarray) -> str:
    """"" when equal, else what differs (for assertion messages)."""
    if frame.shape != reference.shape:
        return f"size {frame.shape[::-1]} != screendump's {reference.shape[::-1]}"
    n = int(((frame & 0xFFFFFF) != reference).sum())
    return f"{n} pixels differ" if n else ""


async def matches_screendump(pixels_of: object, vm: QemuVnc, timeout: float = 10.0) -> str:
    """Take screendumps until the client's frame equals one (the guest may still be drawing).

    `pixels_of` is a callable returning the client's current (h, w) pixels. Returns "" on
    success, else the last difference.
    """
    deadline = time.monotonic() + timeout
    why = "no screendump taken"
    while time.monotonic() < deadline:
        reference = await screendump(vm)
        settle = time.monotonic() + 1.0  # QEMU's VNC refresh is 30 ms; allow a few
        while time.monotonic() < settle:
            why = differing(pixels_of(), reference)  # type: ignore[operator]
            if not why:
                return ""
            await asyncio.sleep(0.03)
    return why
