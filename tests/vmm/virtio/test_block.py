"""virtio-blk against a real raw image file: bytes on disk asserted, refusals with clear messages."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vmm.virtio.driver import DATA_BASE, Buf, Driver
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio import block
from vmgui.vmm.virtio.block import DiskImageError, VirtioBlock
from vmgui.vmm.virtio.mmio import VirtioMmioTransport

SECTORS = 64
HDR = DATA_BASE
STATUS = DATA_BASE + 0x100
DATA = DATA_BASE + 0x1000


@pytest.fixture
def image(tmp_path: Path) -> Path:
    p = tmp_path / "disk.raw"
    p.write_bytes(bytes(range(256)) * 2 * SECTORS)
    return p


@pytest.fixture
def closing() -> Iterator[list[VirtioBlock]]:
    devs: list[VirtioBlock] = []
    yield devs
    for d in devs:
        d.close()


def attach(mem: GuestMemory, dev: VirtioBlock, closing: list[VirtioBlock]) -> Driver:
    closing.append(dev)
    d = Driver(VirtioMmioTransport(dev, mem, lambda: None), mem)
    d.setup()
    return d


def request(d: Driver, mem: GuestMemory, kind: int, sector: int, data: list[Buf]) -> tuple[int, int]:
    """Submit one request; returns (status byte, used length)."""
    mem.write(HDR, struct.pack("<IIQ", kind, 0, sector))
    mem.write_u8(STATUS, 0xFF)
    d.queues[0].submit([Buf(HDR, 16, False), *data, Buf(STATUS, 1, True)])
    d.kick(0)
    [(_, used)] = d.queues[0].used_entries()
    return mem.read_u8(STATUS), used


def test_config_reports_capacity_and_limits(mem: GuestMemory, image: Path,
                                            closing: list[VirtioBlock]) -> None:
    dev = VirtioBlock(str(image))
    d = attach(mem, dev, closing)
    assert d.t.read(0x100, 4) | d.t.read(0x104, 4) << 32 == SECTORS
    assert d.t.read(0x100, 8) == SECTORS
    assert d.t.read(0x108, 4) == block.BLK_SIZE_MAX
    assert d.t.read(0x10C, 4) == block.BLK_SEG_MAX
    assert not d.features() & block.VIRTIO_BLK_F_RO


def test_read_sector_lands_in_guest_buffers(mem: GuestMemory, image: Path,
                                            closing: list[VirtioBlock]) -> None:
    disk = VirtioBlock(str(image))
    d = attach(mem, disk, closing)
    # Two segments, the second crossing a sector boundary.
    status, used = request(d, mem, block.VIRTIO_BLK_T_IN, 1,
                           [Buf(DATA, 100, True), Buf(DATA + 0x1000, 924, True)])
    assert (status, used) == (block.VIRTIO_BLK_S_OK, 1025)
    got = mem.read(DATA, 100) + mem.read(DATA + 0x1000, 924)
    assert got == image.read_bytes()[512:1536]
    # What the VM's disk graph shows (x-vmgui-stats "disk").
    assert disk.byte_counters() == ("disk", {"read_bytes": 1024, "write_bytes": 0})


def test_write_and_flush_reach_the_file(mem: GuestMemory, image: Path,
                                        closing: list[VirtioBlock]) -> None:
    disk = VirtioBlock(str(image))
    d = attach(mem, disk, closing)
    mem.write(DATA, b"\xab" * 1024)
    assert request(d, mem, block.VIRTIO_BLK_T_OUT, 3, [Buf(DATA, 1024, False)]) == (0, 1)
    assert request(d, mem, block.VIRTIO_BLK_T_FLUSH, 0, []) == (0, 1)
    assert disk.byte_counters() == ("disk", {"read_bytes": 0, "write_bytes": 1024})
    on_disk = image.read_bytes()
    assert on_disk[3 * 512 : 5 * 512] == b"\xab" * 1024
    assert on_disk[:3 * 512] == (bytes(range(256)) * 6)


def test_read_only_disk_refuses_writes(mem: GuestMemory, image: Path,
                                       closing: list[VirtioBlock]) -> None:
    before = image.read_bytes()
    disk = VirtioBlock(str(image), read_only=True)
    d = attach(mem, disk, closing)
    assert d.features() & block.VIRTIO_BLK_F_RO
    mem.write(DATA, b"\x11" * 512)
    status, _ = request(d, mem, block.VIRTIO_BLK_T_OUT, 0, [Buf(DATA, 512, False)])
    assert status == block.VIRTIO_BLK_S_IOERR
    assert image.read_bytes() == before
    assert disk.byte_counters() == ("disk", {"read_bytes": 0, "write_bytes": 0})  # refused


def test_out_of_range_and_unknown_requests(mem: GuestMemory, image: Path,
                                           closing: list[VirtioBlock]) -> None:
    d = attach(mem, VirtioBlock(str(image)), closing)
    last = [Buf(DATA, 1024, True)]
    assert request(d, mem, block.VIRTIO_BLK_T_IN, SECTORS - 1, last)[0] == block.VIRTIO_BLK_S_IOERR
    huge = 1 << 63
    assert request(d, mem, block.VIRTIO_BLK_T_IN, huge, last)[0] == block.VIRTIO_BLK_S_IOERR
    assert request(d, mem, 99, 0, [])[0] == block.VIRTIO_BLK_S_UNSUPP
    status, used = request(d, mem, block.VIRTIO_BLK_T_GET_ID, 0, [Buf(DATA, 20, True)])
    assert (status, used) == (0, 21)


def test_get_id_never_reveals_the_host_file_name(mem: GuestMemory, tmp_path: Path,
                                                 closing: list[VirtioBlock]) -> None:
    secret = tmp_path / "alice-tax-2026.img"
    secret.write_bytes(bytes(4096))
    for serial, want in ((None, block.stable_serial(str(secret))), ("SN-0042", b"SN-0042")):
        d = attach(mem, VirtioBlock(str(secret), serial=serial), closing)
        assert request(d, mem, block.VIRTIO_BLK_T_GET_ID, 0, [Buf(DATA, 20, True)])[0] == 0
        got = mem.read(DATA, 20)
        assert got == want.ljust(20, b"\0")
        assert b"alice" not in got and b"tax" not in got and b".img" not in got
        closing.pop().close()


def test_second_writer_is_refused_but_readers_share(image: Path,
                                                    closing: list[VirtioBlock]) -> None:
    closing.append(VirtioBlock(str(image)))
    with pytest.raises(DiskImageError, match=f"^disk image {image} is in use by another VM$"):
        VirtioBlock(str(image))
    with pytest.raises(DiskImageError, match="in use"):
        VirtioBlock(str(image), read_only=True)
    closing.pop().close()
    closing.append(VirtioBlock(str(image), read_only=True))
    closing.append(VirtioBlock(str(image), read_only=True))
    with pytest.raises(DiskImageError, match="in use"):
        VirtioBlock(str(image))


def test_a_raw_disk_that_looks_like_qcow2_is_served_as_raw(
    mem: GuestMemory, tmp_path: Path, closing: list[VirtioBlock]
) -> None:
    """A guest wrote a qcow2 header naming a host file as backing file into its raw disk: the
    next power-on serves the same bytes back, reads no other file and suggests nothing."""
    host_secret = tmp_path / "host-secret"
    host_secret.write_bytes(b"TOP SECRET" * 100)
    disk = tmp_path / "guest.raw"
    backing = str(host_secret).encode()
    header = struct.pack(">4sIQI", b"QFI\xfb", 2, 512, len(backing)) + bytes(492)
    sector0 = (header[:512] + backing).ljust(1024, b"\0")
    disk.write_bytes(sector0 + bytes(3072))
    d = attach(mem, VirtioBlock(str(disk)), closing)
    assert request(d, mem, block.VIRTIO_BLK_T_IN, 0, [Buf(DATA, 1024, True)]) == (0, 1025)
    assert mem.read(DATA, 1024) == sector0
    assert d.t.read(0x100, 8) == 8  # capacity of the raw file, not a qcow2 virtual size


def test_missing_images_and_non_files_are_refused_with_one_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    cases = {"nope.raw": "does not exist", "dir": "is a directory",
             "fifo": "is not a regular file or block device"}
    for name, why in cases.items():
        for read_only in (False, True):  # a FIFO opened read-only would block without O_NONBLOCK
            with pytest.raises(DiskImageError, match=f"^disk image {tmp_path / name} {why}$"):
                VirtioBlock(str(tmp_path / name), read_only=read_only)


def test_zero_length_status_descriptor_gets_ioerr_in_the_last_writable_byte(
    mem: GuestMemory, image: Path, closing: list[VirtioBlock]
) -> None:
    d = attach(mem, VirtioBlock(str(image)), closing)
    mem.write(HDR, struct.pack("<IIQ", block.VIRTIO_BLK_T_IN, 0, 0))
    mem.fill(DATA, 512, 0xEE)
    d.queues[0].submit([Buf(HDR, 16, False), Buf(DATA, 512, True), Buf(STATUS, 0, True)])
    d.kick(0)
    assert d.queues[0].used_entries() == [(0, 1)]
    assert mem.read(DATA + 511, 1) == bytes([block.VIRTIO_BLK_S_IOERR])
    assert mem.read(DATA, 511) == b"\xee" * 511  # no data was read for a malformed request
    assert not d.needs_reset()
    # A zero-length descriptor before a proper status byte is harmless padding.
    status, used = request(d, mem, block.VIRTIO_BLK_T_FLUSH, 0, [Buf(DATA, 0, True)])
    assert (status, used) == (block.VIRTIO_BLK_S_OK, 1)


def test_request_with_no_writable_byte_needs_reset_with_one_log_line(
    mem: GuestMemory, image: Path, closing: list[VirtioBlock], caplog: pytest.LogCaptureFixture
) -> None:
    d = attach(mem, VirtioBlock(str(image)), closing)
    mem.write(HDR, struct.pack("<IIQ", block.VIRTIO_BLK_T_FLUSH, 0, 0))
    d.queues[0].submit([Buf(HDR, 16, False), Buf(STATUS, 0, True)])
    d.kick(0)
    assert d.needs_reset()
    assert d.t.stats.internal_errors == 0
    [line] = [r for r in caplog.records if r.levelname != "DEBUG"]
    assert "no writable status byte" in line.getMessage() and line.exc_info is None
