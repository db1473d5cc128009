"""Image locks against a real QEMU: an image QEMU's guest uses is refused, and QEMU refuses an
image our VM uses (both use QEMU's OFD lock bytes), in both read-write and read-only roles."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import need_tool
from tests.vmm.vmm_process import stop_vmm
from vmgui.vmm.virtio.block import DiskImageError, VirtioBlock

MONITOR_BANNER = "QEMU "
#: QEMU takes a device's lock bytes at the end of its start-up, after the monitor banner; the
#: monitor answers a command only once that is done.
STATUS_REPLY = "VM status"
QEMU_START_TIMEOUT = 30


@pytest.fixture
def image(tmp_path: Path) -> Path:
    p = tmp_path / "shared.raw"
    p.write_bytes(bytes(1 << 20))
    return p


@contextmanager
def qemu_guest_disk(image: Path, read_only: bool) -> Iterator[subprocess.Popen[str] | str]:
    """A stopped TCG QEMU whose virtio-blk device uses `image`: yields the process once it holds
    the image (its monitor answered), or QEMU's error line when it refused to open the image."""
    qemu = need_tool("qemu-system-x86_64")
    drive = f"file={image},format=raw,if=none,id=d" + (",readonly=on" if read_only else "")
    proc = subprocess.Popen(
        [qemu, "-M", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
         "-drive", drive, "-device", "virtio-blk-pci,drive=d", "-monitor", "stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    try:
        line = ""
        if proc.stdout.readline().startswith(MONITOR_BANNER):  # EOF ("") if QEMU exits
            proc.stdin.write("info status\n")
            proc.stdin.flush()
            while (line := proc.stdout.readline()) and STATUS_REPLY not in line:
                pass
        if STATUS_REPLY in line:
            yield proc
        else:
            proc.wait(QEMU_START_TIMEOUT)
            yield proc.stderr.read().strip()
    finally:
        stop_vmm(proc)


def refused(image: Path, read_only: bool) -> bool:
    try:
        VirtioBlock(str(image), read_only=read_only).close()
    except DiskImageError as e:
        assert str(e) == f"disk image {image} is in use by another VM"
        return True
    return False


def test_an_image_a_qemu_guest_writes_is_refused(image: Path) -> None:
    with qemu_guest_disk(image, read_only=False) as q:
        assert not isinstance(q, str), q
        assert refused(image, read_only=False)
        assert refused(image, read_only=True)  # QEMU does not share writing with readers
    assert not refused(image, read_only=False)  # QEMU gone: the locks went with it


def test_a_read_only_qemu_guest_shares_with_readers_only(image: Path) -> None:
    with qemu_guest_disk(image, read_only=True) as q:
        assert not isinstance(q, str), q
        assert not refused(image, read_only=True)
        assert refused(image, read_only=False)


def test_qemu_refuses_an_image_our_vm_writes(image: Path) -> None:
    disk = VirtioBlock(str(image))
    try:
        with qemu_guest_disk(image, read_only=True) as q:
            assert isinstance(q, str) and 'Failed to get shared "write" lock' in q, q
    finally:
        disk.close()


def test_qemu_reads_along_with_our_read_only_vm_but_cannot_write(image: Path) -> None:
    disk = VirtioBlock(str(image), read_only=True)
    try:
        with qemu_guest_disk(image, read_only=True) as q:
            assert not isinstance(q, str), q
        with qemu_guest_disk(image, read_only=False) as q:
            assert isinstance(q, str) and 'Failed to get "write" lock' in q, q
    finally:
        disk.close()
