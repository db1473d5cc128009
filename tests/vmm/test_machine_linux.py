"""A real Linux kernel (Debian's bzImage) boots to a tiny initramfs under vmgui-vmm.

Only where guest kernel code runs hardware-assisted: on an emulating /dev/kvm (kvm_pvm here)
a stock kernel cannot boot under any VMM, so the test skips and says so (a physical limit,
not a missing install, hence pytest.skip rather than need()). The initramfs is built at test
time: /init from tests/guests/linux/init.c plus /dev/console, in newc cpio format.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import need, need_kvm
from tests.vmm.vmm_process import REPO, read_until, start_vmm, stop_vmm

KERNEL = REPO / ".cache" / "debian-kernel" / "vmlinuz"
INIT_SOURCE = REPO / "tests" / "guests" / "linux" / "init.c"
MARKER = b"VMGUI-LINUX-BOOT-OK"


def newc_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One cpio "newc" record (what the kernel's initramfs unpacker reads)."""
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    head = b"070701" + b"".join(f"{f:08x}".encode() for f in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def build_initramfs(tmp: Path) -> Path:
    gcc = shutil.which("gcc")
    need(gcc, "gcc is not installed")
    assert gcc is not None
    init = tmp / "init"
    subprocess.run(
        [gcc, "-static", "-nostdlib", "-ffreestanding", "-O2", "-o", init, INIT_SOURCE],
        check=True,
        capture_output=True,
    )
    archive = (
        newc_entry("dev", stat.S_IFDIR | 0o755)
        + newc_entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
        + newc_entry("init", stat.S_IFREG | 0o755, init.read_bytes())
        + newc_entry("TRAILER!!!", 0)
    )
    path = tmp / "initramfs.cpio"
    path.write_bytes(archive)
    return path


def hardware_assisted() -> tuple[bool, str]:
    from vmgui.host.probe import judge, probe_local
    from vmgui.model.host import Verdict

    j = judge(*probe_local(), [])
    return j.verdict is Verdict.HARDWARE_ASSISTED, j.headline


@pytest.mark.slow
def test_debian_kernel_boots_to_initramfs_and_powers_off(tmp_path: Path) -> None:
    need_kvm()
    need(KERNEL.exists(), "Debian kernel not fetched (bash tests/fetch_assets.sh)")
    fast, why = hardware_assisted()
    if not fast:
        pytest.skip(f"guest kernel code is not hardware-assisted here ({why}); Linux cannot boot")
    sock = tmp_path / "qmp.sock"
    proc = start_vmm(
        "--kernel", KERNEL,
        "--initrd", build_initramfs(tmp_path),
        "--cmdline", "console=ttyS0 panic=-1 rdinit=/init",
        "--framebuffer", "640x480",
        "--qmp", sock,
    )  # fmt: skip
    try:
        read_until(proc, MARKER, timeout=120)
        shot = tmp_path / "screen.ppm"
        asyncio.run(screendump(sock, shot))
        pixels = shot.read_bytes().split(b"\n", 3)[3]
        assert any(pixels), "the framebuffer stayed black: no kernel text on the console"
        assert proc.wait(60) == 0
    finally:
        stop_vmm(proc)


async def screendump(sock: Path, path: Path) -> None:
    from qemu.qmp import QMPClient

    client = QMPClient("linux-test")
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await client.connect(str(sock))
    try:
        await client.execute("screendump", {"filename": str(path)})
    finally:
        with contextlib.suppress(EOFError, ConnectionError):
            await client.disconnect()
