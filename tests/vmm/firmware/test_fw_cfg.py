"""fw_cfg: port and DMA protocol as SeaBIOS drives it, and the checks on guest-supplied values."""

from __future__ import annotations

import struct

import pytest

from vmgui.vmm.firmware import fw_cfg as F
from vmgui.vmm.memory import GuestMemory

DESC = 0x1000
BUF = 0x2000


@pytest.fixture
def mem() -> GuestMemory:
    return GuestMemory.create(1 << 20)


def be32_port(value: int) -> int:
    """What `outl(cpu_to_be32(value))` hands the device (KVM gives port data little-endian)."""
    return int.from_bytes(value.to_bytes(4, "big"), "little")


def dma(dev: F.FwCfg, mem: GuestMemory, control: int, length: int, addr: int = BUF) -> int:
    mem.write(DESC, F.DMA_DESCRIPTOR.pack(control, length, addr))
    dev.write(F.DMA_LOW, 4, be32_port(DESC))
    return int(struct.unpack(">I", mem.read(DESC, 4))[0])


def select(dev: F.FwCfg, key: int) -> None:
    dev.write(F.SELECTOR, 2, key)


def read_port(dev: F.FwCfg, n: int) -> bytes:
    return bytes(dev.read(F.DATA, 1) for _ in range(n))


def test_signature_features_and_dma_signature(mem: GuestMemory) -> None:
    dev = F.FwCfg(mem)
    select(dev, F.KEY_SIGNATURE)
    assert read_port(dev, 4) == b"QEMU"
    select(dev, F.KEY_ID)
    assert struct.unpack("<I", read_port(dev, 4))[0] == F.FEATURE_TRADITIONAL | F.FEATURE_DMA
    high = dev.read(F.DMA_HIGH, 4).to_bytes(4, "little")
    low = dev.read(F.DMA_LOW, 4).to_bytes(4, "little")
    assert high + low == b"QEMU CFG"


def test_file_directory_sorted_with_select_keys(mem: GuestMemory) -> None:
    dev = F.FwCfg(mem)
    dev.add_file("zeta", b"zz")
    key_a = dev.add_file("alpha", b"aaaa")
    select(dev, F.KEY_FILE_DIR)
    (count,) = struct.unpack(">I", read_port(dev, 4))
    entries = [F.FILE_ENTRY.unpack(read_port(dev, 64)) for _ in range(count)]
    names = [e[3].rstrip(b"\0") for e in entries]
    assert names == [b"alpha", b"zeta"]
    assert entries[0][:2] == (4, key_a) and entries[1][:2] == (2, key_a + 1)
    select(dev, key_a + 1)
    assert read_port(dev, 3) == b"zz\0"  # past the end: zeros


def test_dma_select_read_then_continue_and_skip(mem: GuestMemory) -> None:
    dev = F.FwCfg(mem)
    key = dev.add_file("etc/data", bytes(range(16)))
    ctl = (key << 16) | F.DMA_CTL_SELECT | F.DMA_CTL_READ
    assert dma(dev, mem, ctl, 4) == 0
    assert mem.read(BUF, 4) == bytes(range(4))
    assert dma(dev, mem, F.DMA_CTL_SKIP, 4) == 0
    assert dma(dev, mem, F.DMA_CTL_READ, 12) == 0  # 8 bytes left, then zero fill
    assert mem.read(BUF, 12) == bytes(range(8, 16)) + bytes(4)


def test_dma_write_only_to_writable_files_and_inside_them(mem: GuestMemory) -> None:
    dev = F.FwCfg(mem)
    seen: list[bytes] = []
    ro = dev.add_file("etc/ro", bytes(8))
    rw = dev.add_file("etc/rw", bytes(8), seen.append)
    mem.write(BUF, b"ABCDEFGHIJ")
    assert dma(dev, mem, (ro << 16) | F.DMA_CTL_SELECT | F.DMA_CTL_WRITE, 8) == F.DMA_CTL_ERROR
    assert dma(dev, mem, (rw << 16) | F.DMA_CTL_SELECT | F.DMA_CTL_WRITE, 10) == F.DMA_CTL_ERROR
    assert dma(dev, mem, (rw << 16) | F.DMA_CTL_SELECT | F.DMA_CTL_WRITE, 8) == 0
    assert seen == [b"ABCDEFGH"] and dev.file_data("etc/rw") == b"ABCDEFGH"
    assert dev.file_data("etc/ro") == bytes(8)


@pytest.mark.parametrize(
    ("length", "addr"),
    [
        (16, (1 << 20) - 8),  # runs off the end of RAM
        (16, 0xFFFF_FFFF_FFFF_FFF8),  # overflows
        (F.MAX_DMA_LENGTH + 1, BUF),  # longer than any transfer may be
        (4, 0xC000_0000),  # not RAM
    ],
)
def test_hostile_dma_ranges_end_in_error_without_touching_memory(
    mem: GuestMemory, length: int, addr: int
) -> None:
    dev = F.FwCfg(mem)
    before = mem.read(0, 1 << 20)
    status = dma(dev, mem, (F.KEY_SIGNATURE << 16) | F.DMA_CTL_SELECT | F.DMA_CTL_READ, length, addr)
    assert status == F.DMA_CTL_ERROR
    after = bytearray(mem.read(0, 1 << 20))
    after[DESC : DESC + 16] = before[DESC : DESC + 16]
    assert bytes(after) == before
    assert dev.dma_errors == 1


def test_descriptor_outside_ram_is_ignored(mem: GuestMemory) -> None:
    dev = F.FwCfg(mem)
    dev.write(F.DMA_HIGH, 4, be32_port(0x1))
    dev.write(F.DMA_LOW, 4, be32_port(0x0))  # 4 GiB: no RAM there
    assert dev.dma_errors == 1


def test_file_names_are_checked(mem: GuestMemory) -> None:
    dev = F.FwCfg(mem)
    with pytest.raises(F.FwCfgError):
        dev.add_file("x" * 56, b"")
    dev.add_file("a", b"")
    with pytest.raises(F.FwCfgError):
        dev.add_file("a", b"")
