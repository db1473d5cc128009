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
    d = attach(mem, VirtioBlock(str(image)), closing)
    # Two segments, the second crossing a sector boundary.
    status, used = request(d, mem, block.VIRTIO_BLK_T_IN, 1,
                           [Buf(DATA, 100, True), Buf(DATA + 0x1000, 924, True)])
    assert (status, used) == (block.VIRTIO_BLK_S_OK, 1025)
    got = mem.read(DATA, 100) + mem.read(DATA + 0x1000, 924)
    assert got == image.read_bytes()[512:1536]


def test_write_and_flush_reach_the_file(mem: GuestMemory, image: Path,
                                        closing: list[VirtioBlock]) -> None:
    d = attach(mem, VirtioBlock(str(image)), closing)
    mem.write(DATA, b"\xab" * 1024)
    assert request(d, mem, block.VIRTIO_BLK_T_OUT, 3, [Buf(DATA, 1024, False)]) == (0, 1)
    assert request(d, mem, block.VIRTIO_BLK_T_FLUSH, 0, []) == (0, 1)
    on_disk = image.read_bytes()
    assert on_disk[3 * 512 : 5 * 512] == b"\xab" * 1024
    assert on_disk[:3 * 512] == (bytes(range(256)) * 6)


def test_read_only_disk_refuses_writes(mem: GuestMemory, image: Path,
                                       closing: list[VirtioBlock]) -> None:
    before = image.read_bytes()
    d = attach(mem, VirtioBlock(str(image), read_only=True), closing)
    assert d.features() & block.VIRTIO_BLK_F_RO
    mem.write(DATA, b"\x11" * 512)
    status, _ = request(d, mem, block.VIRTIO_BLK_T_OUT, 0, [Buf(DATA, 512, False)])
    assert status == block.VIRTIO_BLK_S_IOERR
    assert image.read_bytes() == before


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
    assert mem.read(DATA, 20).rstrip(b"\0") == b"disk.raw"


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


def test_qcow2_and_missing_images_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    q = tmp_path / "disk.qcow2"
    q.write_bytes(b"QFI\xfb" + bytes(508))
    with pytest.raises(DiskImageError, match=r"qcow2.*qemu-img convert -O raw") as e:
        VirtioBlock(str(q))
    assert "\n" not in str(e.value)
    with pytest.raises(DiskImageError, match="does not exist"):
        VirtioBlock(str(tmp_path / "nope.raw"))
    assert os.listdir(tmp_path) == ["disk.qcow2"]
