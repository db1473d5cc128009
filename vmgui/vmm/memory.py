"""Guest physical memory: the one place guest addresses are checked.

Every guest-supplied address and length goes through `GuestMemory.check`, which rejects ranges
that are negative, overflow, leave RAM, or straddle two regions. `view` returns a zero-copy
writable memoryview into the backing mmap, suitable for os.preadv/os.pwritev.

A region backed by a memfd (one we hand to other processes, e.g. the framebuffer to viewers) is
sealed against resizing: a viewer's ftruncate could otherwise shrink the file under our mapping
and kill the VMM with SIGBUS on the next access.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import os
import struct

from vmgui.vmm.record import record

#: Start of the 32-bit PCI/MMIO hole; RAM above it continues at 4 GiB.
MMIO_HOLE_START = 0xC000_0000
HIGH_RAM_START = 0x1_0000_0000
#: Largest single access a device model may ask for (bounds descriptor lengths too).
MAX_ACCESS = 1 << 32
#: Seals on a shared memfd: its size is fixed for good (and the seals themselves too).
MEMFD_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


class GuestMemoryError(Exception):
    """A guest-physical range that is not entirely inside one RAM region."""


@record
class MemoryRegion:
    guest_addr: int
    size: int
    mm: mmap.mmap
    fd: int = -1  # memfd backing the region, or -1 for anonymous memory

    @property
    def host_addr(self) -> int:
        """Userspace address of the mapping, for KVM_SET_USER_MEMORY_REGION."""
        return ctypes.addressof(ctypes.c_char.from_buffer(self.mm))

    @property
    def end(self) -> int:
        return self.guest_addr + self.size


def _page_align(n: int) -> int:
    return (n + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)


def map_region(guest_addr: int, size: int, memfd_name: str | None = None) -> MemoryRegion:
    """Allocate a region; with `memfd_name` it is backed by a memfd that can be shared (sealed
    at its size, see the module docstring)."""
    size = _page_align(size)
    if memfd_name is not None:
        fd = os.memfd_create(memfd_name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, MEMFD_SEALS)
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        return MemoryRegion(guest_addr, size, mm, fd)
    mm = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, mmap.PROT_READ | mmap.PROT_WRITE)
    return MemoryRegion(guest_addr, size, mm)


class GuestMemory:
    """Guest RAM as a sorted set of non-overlapping regions."""

    def __init__(self, regions: list[MemoryRegion]) -> None:
        self.regions = sorted(regions, key=lambda r: r.guest_addr)
        for a, b in zip(self.regions, self.regions[1:], strict=False):
            if a.end > b.guest_addr:
                raise ValueError("overlapping guest memory regions")

    @classmethod
    def create(cls, size: int) -> GuestMemory:
        """RAM of `size` bytes: low RAM below the 32-bit MMIO hole, the rest above 4 GiB."""
        if size <= 0:
            raise ValueError("guest memory size must be positive")
        low = min(size, MMIO_HOLE_START)
        regions = [map_region(0, low)]
        if size > low:
            regions.append(map_region(HIGH_RAM_START, size - low))
        return cls(regions)

    @property
    def size(self) -> int:
        return sum(r.size for r in self.regions)

    @property
    def low_ram_end(self) -> int:
        """End of the region that starts at 0 (where boot structures must live)."""
        return self.regions[0].end if self.regions and self.regions[0].guest_addr == 0 else 0

    def check(self, addr: int, length: int) -> tuple[MemoryRegion, int]:
        """Return (region, offset) for [addr, addr+length) or raise GuestMemoryError."""
        if addr < 0 or length < 0 or length > MAX_ACCESS:
            raise GuestMemoryError(f"invalid guest range {addr:#x}+{length:#x}")
        end = addr + length
        for r in self.regions:
            if r.guest_addr <= addr < r.end or (length == 0 and addr == r.end):
                if end > r.end:
                    raise GuestMemoryError(f"guest range {addr:#x}+{length:#x} leaves RAM")
                return r, addr - r.guest_addr
        raise GuestMemoryError(f"guest address {addr:#x} is not RAM")

    def contains(self, addr: int, length: int) -> bool:
        try:
            self.check(addr, length)
        except GuestMemoryError:
            return False
        return True

    def view(self, addr: int, length: int) -> memoryview:
        r, off = self.check(addr, length)
        return memoryview(r.mm)[off : off + length]

    def read(self, addr: int, length: int) -> bytes:
        r, off = self.check(addr, length)
        return r.mm[off : off + length]

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        r, off = self.check(addr, len(data))
        r.mm[off : off + len(data)] = data

    def fill(self, addr: int, length: int, byte: int = 0) -> None:
        r, off = self.check(addr, length)
        r.mm[off : off + length] = bytes([byte]) * length

    def read_u8(self, addr: int) -> int:
        return self.read(addr, 1)[0]

    def read_u16(self, addr: int) -> int:
        return int(struct.unpack("<H", self.read(addr, 2))[0])

    def read_u32(self, addr: int) -> int:
        return int(struct.unpack("<I", self.read(addr, 4))[0])

    def read_u64(self, addr: int) -> int:
        return int(struct.unpack("<Q", self.read(addr, 8))[0])

    def write_u8(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<B", value))

    def write_u16(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<H", value))

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<I", value))

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<Q", value))

    def close(self) -> None:
        for r in self.regions:
            # A memoryview may still be exported; then the mapping dies with the process.
            with contextlib.suppress(BufferError):
                r.mm.close()
            if r.fd >= 0:
                os.close(r.fd)
                r.fd = -1
