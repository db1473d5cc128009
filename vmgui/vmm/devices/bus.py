"""Port-I/O and MMIO dispatch: maps guest accesses to device models.

Devices are plain objects with `read(offset, size) -> int` and `write(offset, size, value)`;
they never do I/O of their own, so unit tests drive them byte by byte. Each device serializes
its own state (its own lock): the bus takes no lock around a device call, so a device whose
backend stalls holds up only the vCPUs that touch that device, never the others' registers. Accesses that hit no
device read as all-ones and drop writes, and are counted (a wild guest is never fatal).
"""

from __future__ import annotations

import bisect
import threading

from vmgui.vmm.record import TYPE_CHECKING, field, record

if TYPE_CHECKING:  # not at run time: importing typing costs the VMM's start-up ~4 ms
    from typing import Protocol

    class BusDevice(Protocol):
        def read(self, offset: int, size: int) -> int: ...

        def write(self, offset: int, size: int, value: int) -> None: ...


@record
class _Range:
    base: int
    size: int
    device: BusDevice
    name: str


@record
class BusStats:
    reads: int = 0
    writes: int = 0
    unhandled_reads: int = 0
    unhandled_writes: int = 0
    errors: int = 0
    unhandled_addrs: dict[int, int] = field(default_factory=dict)


class Bus:
    """Non-overlapping address ranges → devices. Ranges are registered before the vCPUs start
    and never change afterwards, so lookups take no lock; only the counters do."""

    MAX_TRACKED_UNHANDLED = 64

    def __init__(self, name: str) -> None:
        self.name = name
        self._bases: list[int] = []
        self._ranges: list[_Range] = []
        self._lock = threading.Lock()
        self.stats = BusStats()

    def register(self, base: int, size: int, device: BusDevice, name: str = "") -> None:
        if size <= 0:
            raise ValueError("bus range size must be positive")
        i = bisect.bisect_left(self._bases, base)
        if i > 0 and self._ranges[i - 1].base + self._ranges[i - 1].size > base:
            raise ValueError(f"{self.name}: {base:#x} overlaps {self._ranges[i - 1].name}")
        if i < len(self._ranges) and base + size > self._ranges[i].base:
            raise ValueError(f"{self.name}: {base:#x} overlaps {self._ranges[i].name}")
        self._bases.insert(i, base)
        self._ranges.insert(i, _Range(base, size, device, name or type(device).__name__))

    def find(self, addr: int) -> tuple[BusDevice, int] | None:
        i = bisect.bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._ranges[i]
            if addr < r.base + r.size:
                return r.device, addr - r.base
        return None

    def _unhandled(self, addr: int) -> None:
        s = self.stats
        if addr in s.unhandled_addrs or len(s.unhandled_addrs) < self.MAX_TRACKED_UNHANDLED:
            s.unhandled_addrs[addr] = s.unhandled_addrs.get(addr, 0) + 1

    def read(self, addr: int, size: int) -> int:
        hit = self.find(addr)
        with self._lock:  # counters only: never held across a device call
            self.stats.reads += 1
            if hit is None:
                self.stats.unhandled_reads += 1
                self._unhandled(addr)
        if hit is None:
            return (1 << (8 * size)) - 1
        dev, off = hit
        return dev.read(off, size) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> None:
        hit = self.find(addr)
        with self._lock:
            self.stats.writes += 1
            if hit is None:
                self.stats.unhandled_writes += 1
                self._unhandled(addr)
        if hit is None:
            return
        dev, off = hit
        dev.write(off, size, value & ((1 << (8 * size)) - 1))
