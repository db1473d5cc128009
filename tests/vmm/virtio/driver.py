"""A tiny virtio-mmio driver for tests: negotiates through the real registers and writes
descriptors and the available ring into real guest memory, as a guest kernel would."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio import mmio
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.queue import VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE

#: Guest RAM layout the driver uses: rings from RING_BASE (one 64 KiB slot per queue),
#: data buffers from DATA_BASE.
RING_BASE = 0x10000
RING_SLOT = 0x10000
DATA_BASE = 0x100000


@dataclass
class Buf:
    addr: int
    length: int
    writable: bool


class DriverQueue:
    def __init__(self, mem: GuestMemory, base: int, size: int) -> None:
        self.mem = mem
        self.size = size
        self.desc = base
        self.avail = base + 16 * size
        self.used = (self.avail + 6 + 2 * size + 3) & ~3
        self.avail_idx = 0
        self.used_seen = 0
        self.next_desc = 0

    def submit(self, bufs: list[Buf]) -> int:
        """Write one chain into free descriptors and publish it; returns the head index."""
        head = self.next_desc
        for i, b in enumerate(bufs):
            idx = (head + i) % self.size
            flags = (VIRTQ_DESC_F_WRITE if b.writable else 0)
            flags |= VIRTQ_DESC_F_NEXT if i + 1 < len(bufs) else 0
            nxt = (idx + 1) % self.size
            self.mem.write(self.desc + 16 * idx, struct.pack("<QIHH", b.addr, b.length, flags, nxt))
        self.next_desc = (head + len(bufs)) % self.size
        self.mem.write_u16(self.avail + 4 + 2 * (self.avail_idx % self.size), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.write_u16(self.avail + 2, self.avail_idx)
        return head

    def used_entries(self) -> list[tuple[int, int]]:
        """New (head, length) used elements since the last call."""
        idx = self.mem.read_u16(self.used + 2)
        out = []
        while self.used_seen != idx:
            slot = self.used_seen % self.size
            out.append(struct.unpack("<II", self.mem.read(self.used + 4 + 8 * slot, 8)))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out


class Driver:
    def __init__(self, transport: VirtioMmioTransport, mem: GuestMemory) -> None:
        self.t = transport
        self.mem = mem
        self.queues: list[DriverQueue] = []

    def r(self, reg: int) -> int:
        return self.t.read(reg, 4)

    def w(self, reg: int, value: int) -> None:
        self.t.write(reg, 4, value)

    def features(self) -> int:
        feats = 0
        for sel in (0, 1):
            self.w(mmio.REG_DEVICE_FEATURES_SEL, sel)
            feats |= self.r(mmio.REG_DEVICE_FEATURES) << (32 * sel)
        return feats

    def setup(self, queue_size: int = 16, features: int | None = None) -> None:
        assert self.r(mmio.REG_MAGIC) == mmio.MAGIC_VALUE
        assert self.r(mmio.REG_VERSION) == 2
        self.w(mmio.REG_STATUS, 0)
        self.w(mmio.REG_STATUS, mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_DRIVER)
        want = self.features() if features is None else features
        want &= ~mmio.VIRTIO_F_RING_EVENT_IDX if features is None else ~0
        for sel in (0, 1):
            self.w(mmio.REG_DRIVER_FEATURES_SEL, sel)
            self.w(mmio.REG_DRIVER_FEATURES, (want >> (32 * sel)) & 0xFFFF_FFFF)
        status = mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_DRIVER | mmio.STATUS_FEATURES_OK
        self.w(mmio.REG_STATUS, status)
        assert self.r(mmio.REG_STATUS) & mmio.STATUS_FEATURES_OK
        self.queues = []
        for i in range(len(self.t.queues)):
            self.w(mmio.REG_QUEUE_SEL, i)
            assert self.r(mmio.REG_QUEUE_NUM_MAX) >= queue_size
            q = DriverQueue(self.mem, RING_BASE + i * RING_SLOT, queue_size)
            self.w(mmio.REG_QUEUE_NUM, queue_size)
            for lo, addr in ((mmio.REG_QUEUE_DESC_LOW, q.desc),
                             (mmio.REG_QUEUE_DRIVER_LOW, q.avail),
                             (mmio.REG_QUEUE_DEVICE_LOW, q.used)):
                self.w(lo, addr & 0xFFFF_FFFF)
                self.w(lo + 4, addr >> 32)
            self.w(mmio.REG_QUEUE_READY, 1)
            self.queues.append(q)
        self.w(mmio.REG_STATUS, status | mmio.STATUS_DRIVER_OK)

    def kick(self, queue: int) -> None:
        self.w(mmio.REG_QUEUE_NOTIFY, queue)

    def needs_reset(self) -> bool:
        return bool(self.r(mmio.REG_STATUS) & mmio.STATUS_DEVICE_NEEDS_RESET)
