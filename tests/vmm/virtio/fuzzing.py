"""One fuzz case = a hostile driver's whole conversation with one device over real guest memory.

Shared by the hypothesis tests (tests/vmm/virtio/test_fuzz.py) and the long run
(bench/fuzz_virtio.py). Guest RAM has three regions (two that touch, one after a hole), and
chains point anywhere: into each region, across the seams, past the ends, into the hole.

`run_case` asserts the invariants:
- no exception escapes a device model: nothing escapes the transport, no internal error counted;
- no access outside guest RAM: every chain the device completed is valid by an independent
  reference walk (each buffer inside one region, no INDIRECT, no readable after writable, no
  loop), its used length fits its writable buffers, and every byte that changed in RAM lies in a
  used ring or in a writable buffer of a completed chain (memoryview slicing truncates silently,
  so only this comparison notices a buffer cut short at the end of a region);
- every kicked request queue is drained and completed, or the device says DEVICE_NEEDS_RESET,
  which it must when the driver published more entries than the queue holds;
- the image file never grows.
"""

from __future__ import annotations

import collections
import os
import socket
import struct
import tempfile
from dataclasses import dataclass, field

from tests.vmm.virtio.driver import RING_BASE, RING_SLOT, Driver
from vmgui.vmm.memory import GuestMemory, map_region
from vmgui.vmm.virtio import mmio
from vmgui.vmm.virtio.block import VirtioBlock
from vmgui.vmm.virtio.device import VirtioDevice
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.net import VirtioNet, stable_mac
from vmgui.vmm.virtio.net_backends import StreamBackend
from vmgui.vmm.virtio.queue import (
    MAX_CHAIN_BYTES,
    VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
)
from vmgui.vmm.virtio.rng import VirtioRng

RAM = 2 << 20
#: Guest RAM: (start, size) of each region. The first holds the rings and the data area; the
#: second touches it (a buffer across the seam is in RAM twice over and still invalid); the
#: third lies after a hole.
REGIONS = ((0, RAM), (RAM, 0x80000), (0x400000, 0x80000))
IMAGE_SECTORS = 64
DEVICES = ("blk", "blk-ro", "rng", "net")
#: Descriptor addresses a fuzzer picks from: inside each region, at its edges, in the hole,
#: outside, overflowing.
ADDRESS_CHOICES = (0x100000, 0x1FF000, RAM - 16, RAM - 1, RAM, RAM + 0x7FFF0, RAM + 0x80000,
                   0x3FFFF8, 0x400000, 0x47FFF0, 0x480000, 0xC000_0000,
                   0xFFFF_FFFF_FFFF_FFF0, 0x20000, 0)
RegOp = tuple[bool, int, int, int]  # (write, offset, size, value)


@dataclass
class FuzzCase:
    device: str
    queue_size: int = 8
    event_idx: bool = False
    kick: int = 0
    pre_ops: list[RegOp] = field(default_factory=list)
    post_ops: list[RegOp] = field(default_factory=list)
    descriptors: list[tuple[int, int, int, int]] = field(default_factory=list)
    avail_ring: list[int] = field(default_factory=list)
    avail_idx: int = 0
    memory_fill: bytes = b""
    rx_frames: list[int] = field(default_factory=list)


class Rig:
    """Guest memory, an image file and a stream socket reused across cases (cheap per case)."""

    def __init__(self) -> None:
        self.mem = GuestMemory([map_region(start, size) for start, size in REGIONS])
        self.dir = tempfile.TemporaryDirectory(prefix="vmgui-fuzz-")
        self.image = os.path.join(self.dir.name, "disk.raw")
        with open(self.image, "wb") as f:
            f.write(bytes(range(256)) * 2 * IMAGE_SECTORS)
        self.cases = 0
        #: "needs-reset" / "completed" (>= 1 request answered) / "idle", to show coverage.
        self.outcomes: collections.Counter[str] = collections.Counter()

    def make_device(self, kind: str) -> tuple[VirtioDevice, socket.socket | None]:
        if kind == "blk":
            return VirtioBlock(self.image), None
        if kind == "blk-ro":
            return VirtioBlock(self.image, read_only=True), None
        if kind == "rng":
            return VirtioRng(), None
        ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return VirtioNet(StreamBackend(ours), stable_mac("fuzz")), peer

    def close(self) -> None:
        self.mem.close()
        self.dir.cleanup()


def _apply(t: VirtioMmioTransport, ops: list[RegOp]) -> None:
    for write, offset, size, value in ops:
        if write:
            t.write(offset, size, value & ((1 << (8 * size)) - 1))
        else:
            t.read(offset, size)


def run_case(rig: Rig, case: FuzzCase) -> None:
    rig.cases += 1
    mem = rig.mem
    mem.fill(RING_BASE, 4 * RING_SLOT)  # rings from the last case must not leak into this one
    mem.fill(0x100000, 0x10000)
    if case.memory_fill:
        pattern = case.memory_fill * (0x10000 // len(case.memory_fill) + 1)
        mem.write(0x100000, pattern[:0x10000])
        for start, size in REGIONS[1:]:  # the seams and ends other regions' buffers touch
            mem.write(start, pattern[:0x100])
            mem.write(start + size - 0x100, pattern[:0x100])
    device, peer = rig.make_device(case.device)
    t = VirtioMmioTransport(device, mem, lambda: None)
    try:
        _apply(t, case.pre_ops)
        d = Driver(t, mem)
        _negotiate(d, case)
        _program_queue(mem, case)
        before = [bytes(r.mm) for r in mem.regions]
        if peer is not None:
            for n in case.rx_frames:
                peer.sendall(struct.pack("!I", n) + bytes([n & 0xFF]) * n)
            for _fd, handler in t.fds():
                handler()
        t.write(mmio.REG_QUEUE_NOTIFY, 4, case.kick)
        _check_drained(t, case)
        _check_guest_memory(mem, case, before, len(t.queues))
        _apply(t, case.post_ops)  # may move the rings anywhere: only "nothing escapes" holds
        t.notify(case.kick)
        assert t.stats.internal_errors == 0, t.stats.last_error
        assert os.path.getsize(rig.image) == IMAGE_SECTORS * 512
        answered = sum(q.next_used for q in t.queues)
        rig.outcomes["needs-reset" if t.broken else "completed" if answered else "idle"] += 1
    finally:
        t.close()
        if peer is not None:
            peer.close()


def _negotiate(d: Driver, case: FuzzCase) -> None:
    """A well-behaved handshake with the case's queue size; the rings are the hostile part."""
    t = d.t
    t.write(mmio.REG_STATUS, 4, 0)
    t.write(mmio.REG_STATUS, 4, mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_DRIVER)
    feats = d.features()
    if not case.event_idx:
        feats &= ~mmio.VIRTIO_F_RING_EVENT_IDX
    for sel in (0, 1):
        t.write(mmio.REG_DRIVER_FEATURES_SEL, 4, sel)
        t.write(mmio.REG_DRIVER_FEATURES, 4, (feats >> (32 * sel)) & 0xFFFF_FFFF)
    status = mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_DRIVER | mmio.STATUS_FEATURES_OK
    t.write(mmio.REG_STATUS, 4, status)
    for i in range(len(t.queues)):
        base = RING_BASE + i * RING_SLOT
        t.write(mmio.REG_QUEUE_SEL, 4, i)
        t.write(mmio.REG_QUEUE_NUM, 4, case.queue_size)
        t.write(mmio.REG_QUEUE_DESC_LOW, 4, base)
        t.write(mmio.REG_QUEUE_DRIVER_LOW, 4, base + 0x8000)
        t.write(mmio.REG_QUEUE_DEVICE_LOW, 4, base + 0xC000)
        t.write(mmio.REG_QUEUE_READY, 4, 1)
    t.write(mmio.REG_STATUS, 4, status | mmio.STATUS_DRIVER_OK)


def _program_queue(mem: GuestMemory, case: FuzzCase) -> None:
    """Write the hostile descriptor table and avail ring into the kicked queue (and rx for net)."""
    targets = {case.kick, 0} if case.device == "net" else {case.kick}
    for qi in targets:
        if qi > 3:
            continue
        base = RING_BASE + qi * RING_SLOT
        for i, (addr, length, flags, nxt) in enumerate(case.descriptors[:512]):
            mem.write(base + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))
        avail = base + 0x8000
        for i, head in enumerate(case.avail_ring[:512]):
            mem.write_u16(avail + 4 + 2 * i, head)
        mem.write_u16(avail + 2, case.avail_idx)


def _check_drained(t: VirtioMmioTransport, case: FuzzCase) -> None:
    """A request queue is either fully consumed and answered, or the device is broken."""
    if t.broken or not t.device.active:
        return
    q = t.device.queues[case.kick] if t.device.queues and case.kick < len(t.queues) else None
    if q is None or not q.ready:
        return
    if case.device == "net" and case.kick == 0:
        return  # rx consumption depends on frames waiting, not on the kick
    published = case.avail_idx & 0xFFFF
    assert published <= q.size, "a driver published more entries than the queue holds"
    assert q.last_avail == case.avail_idx & 0xFFFF, "device neither drained the queue nor broke"
    assert q.next_used == q.last_avail, "popped requests were not all completed"


# --- the reference: an independent model of what a device may touch ----------------------------

Span = tuple[int, int]  # [start, end)
PAGE = 0x1000


def in_one_region(addr: int, length: int) -> bool:
    return any(start <= addr and addr + length <= start + size for start, size in REGIONS)


def _read(snapshot: list[bytes], addr: int, length: int) -> bytes:
    for (start, _), data in zip(REGIONS, snapshot, strict=True):
        if start <= addr and addr + length <= start + len(data):
            return data[addr - start : addr - start + length]
    raise AssertionError(f"reference read outside the rings at {addr:#x}")


def reference_chain(snapshot: list[bytes], desc: int, size: int, head: int) -> list[Span] | None:
    """The writable spans of the chain at `head`, or None if virtio forbids completing it."""
    spans: list[Span] = []
    total, index = 0, head
    for _ in range(size):
        if index >= size:
            return None
        addr, length, flags, nxt = struct.unpack("<QIHH", _read(snapshot, desc + 16 * index, 16))
        total += length
        if flags & VIRTQ_DESC_F_INDIRECT or total > MAX_CHAIN_BYTES:
            return None
        if not in_one_region(addr, length):
            return None
        if flags & VIRTQ_DESC_F_WRITE:
            spans.append((addr, addr + length))
        elif spans:
            return None  # readable after writable
        if not flags & VIRTQ_DESC_F_NEXT:
            return spans
        index = nxt
    return None  # longer than the queue: a loop


def _check_guest_memory(mem: GuestMemory, case: FuzzCase, before: list[bytes],
                        queues: int) -> None:
    """Completed chains are valid, and nothing outside them and the used rings changed."""
    size = case.queue_size
    if size & (size - 1) or not 0 < size <= 256:
        spans_ok: list[Span] = []  # no queue could start: nothing may change
        rings: list[Span] = []
    else:
        rings = [(RING_BASE + i * RING_SLOT, RING_BASE + (i + 1) * RING_SLOT)
                 for i in range(queues)]
        spans_ok = list(rings)
        for i in range(queues):
            used = RING_BASE + i * RING_SLOT + 0xC000
            idx = mem.read_u16(used + 2)
            for n in range(min(idx, size)):
                head, length = struct.unpack("<II", mem.read(used + 4 + 8 * (n % size), 8))
                chain = reference_chain(before, RING_BASE + i * RING_SLOT, size, head)
                if chain is None and _touches(rings, before, case):
                    return  # the guest pointed buffers at its own rings: no fixed reference
                assert chain is not None, f"queue {i} completed an invalid chain from {head}"
                assert length <= sum(e - s for s, e in chain), "used length beyond the buffers"
                spans_ok += chain
    after = [bytes(r.mm) for r in mem.regions]
    for (start, _), old, new in zip(REGIONS, before, after, strict=True):
        for page in range(0, len(old), PAGE) if old != new else ():
            if old[page : page + PAGE] == new[page : page + PAGE]:
                continue
            for i in range(page, min(page + PAGE, len(old))):
                a = start + i
                if old[i] != new[i] and not any(s <= a < e for s, e in spans_ok):
                    raise AssertionError(f"device wrote guest memory outside its buffers at {a:#x}")


def _touches(rings: list[Span], snapshot: list[bytes], case: FuzzCase) -> bool:
    """Whether any descriptor of the case points into the ring area."""
    return any(addr < rings[-1][1] and rings[0][0] < addr + length
               for addr, length, _, _ in case.descriptors)
