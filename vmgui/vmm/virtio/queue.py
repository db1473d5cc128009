"""Split virtqueue (virtio 1.x §2.7): parse the rings a guest driver programs, and nothing more.

Guest-visible contract: descriptor table (16-byte aligned, 16 bytes per entry), available ring
(2-byte aligned) and used ring (4-byte aligned) at the guest-physical addresses the driver wrote;
queue size a power of two <= MAX_QUEUE_SIZE. VIRTQ_DESC_F_INDIRECT is not offered and is refused.

Every value the guest controls is checked here before it is used (docs/architecture.md; precedents
Firecracker CVE-2019-18960, QEMU CVE-2016-5403): descriptor index < size, chain length <= size
(a loop cannot spin us), avail.idx - last_avail <= size, each buffer inside one RAM region with
no overflow (GuestMemory.check), chain byte totals capped, device-readable buffers before
device-writable ones. Any violation raises QueueError; the transport then marks the device
DEVICE_NEEDS_RESET and stops touching the queue.

Each descriptor is read exactly once (one unpack from guest memory), so a guest rewriting a
descriptor while we walk it cannot make us act on a value we did not check.
"""

from __future__ import annotations

import struct

from vmgui.vmm.memory import GuestMemory, GuestMemoryError
from vmgui.vmm.record import field, record

#: Largest queue size we accept (and advertise as QueueNumMax); the spec allows 32768.
MAX_QUEUE_SIZE = 256
#: Upper bound on the bytes one descriptor chain may describe (readable + writable).
MAX_CHAIN_BYTES = 64 << 20

VIRTQ_DESC_F_NEXT = 1
VIRTQ_DESC_F_WRITE = 2
VIRTQ_DESC_F_INDIRECT = 4
VIRTQ_AVAIL_F_NO_INTERRUPT = 1

DESC_SIZE = 16
DESC_ALIGN = 16
AVAIL_ALIGN = 2
USED_ALIGN = 4
USED_ELEM_SIZE = 8

_DESC = struct.Struct("<QIHH")
_U16 = struct.Struct("<H")
_USED_ELEM = struct.Struct("<II")


class QueueError(Exception):
    """The guest programmed a queue or descriptor chain that breaks the virtio rules."""


@record
class DescriptorChain:
    """One available request, resolved into zero-copy views of guest memory (for preadv/pwritev)."""

    head: int
    readable: list[memoryview] = field(default_factory=list)
    writable: list[memoryview] = field(default_factory=list)
    readable_len: int = 0
    writable_len: int = 0


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class Queue:
    """One split virtqueue; the transport fills in the addresses the driver writes."""

    def __init__(self, mem: GuestMemory, max_size: int = MAX_QUEUE_SIZE) -> None:
        if not _is_power_of_two(max_size) or max_size > MAX_QUEUE_SIZE:
            raise ValueError(f"queue max size {max_size} is not a power of two <= {MAX_QUEUE_SIZE}")
        self.mem = mem
        self.max_size = max_size
        self.reset()

    def reset(self) -> None:
        self.size = self.max_size
        self.ready = False
        self.desc_addr = 0
        self.driver_addr = 0
        self.device_addr = 0
        self.event_idx = False
        self.last_avail = 0
        self.next_used = 0
        self._signalled_used = 0
        self._desc: memoryview | None = None
        self._avail: memoryview | None = None
        self._used: memoryview | None = None

    # --- activation ------------------------------------------------------------------------

    def activate(self, event_idx: bool = False) -> None:
        """Check the driver's layout once and pin views of the three rings; QueueError if bad."""
        n = self.size
        if not _is_power_of_two(n) or n > self.max_size:
            raise QueueError(f"queue size {n} is not a power of two <= {self.max_size}")
        for name, addr, align in (
            ("descriptor table", self.desc_addr, DESC_ALIGN),
            ("available ring", self.driver_addr, AVAIL_ALIGN),
            ("used ring", self.device_addr, USED_ALIGN),
        ):
            if addr % align:
                raise QueueError(f"{name} address {addr:#x} is not {align}-byte aligned")
        try:
            desc = self.mem.view(self.desc_addr, DESC_SIZE * n)
            avail = self.mem.view(self.driver_addr, 6 + 2 * n)
            used = self.mem.view(self.device_addr, 6 + USED_ELEM_SIZE * n)
        except GuestMemoryError as e:
            raise QueueError(f"queue ring outside guest RAM: {e}") from None
        self._desc, self._avail, self._used = desc, avail, used
        self.event_idx = event_idx
        self.last_avail = 0
        self.next_used = 0
        self._signalled_used = 0
        self.ready = True

    # --- available side --------------------------------------------------------------------

    def _avail_idx(self) -> int:
        assert self._avail is not None
        return int(_U16.unpack_from(self._avail, 2)[0])

    def pending(self) -> int:
        """Number of chains the driver has made available and we have not popped yet."""
        if not self.ready:
            return 0
        count = (self._avail_idx() - self.last_avail) & 0xFFFF
        if count > self.size:
            raise QueueError(f"avail.idx moved {count} entries ahead of a {self.size}-entry queue")
        return count

    def pop(self) -> DescriptorChain | None:
        """Take the next available chain, or None when the ring is empty."""
        if not self.pending():
            return None
        assert self._avail is not None
        slot = self.last_avail % self.size
        head = int(_U16.unpack_from(self._avail, 4 + 2 * slot)[0])
        chain = self._walk(head)
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        if self.event_idx:
            # avail_event: ask to be notified only once the driver passes what we consumed.
            assert self._used is not None
            _U16.pack_into(self._used, 4 + USED_ELEM_SIZE * self.size, self.last_avail)
        return chain

    def _walk(self, head: int) -> DescriptorChain:
        assert self._desc is not None
        chain = DescriptorChain(head)
        index = head
        total = 0
        for _ in range(self.size):
            if index >= self.size:
                raise QueueError(f"descriptor index {index} >= queue size {self.size}")
            addr, length, flags, nxt = _DESC.unpack_from(self._desc, DESC_SIZE * index)
            if flags & VIRTQ_DESC_F_INDIRECT:
                raise QueueError("indirect descriptors were not negotiated")
            total += length
            if total > MAX_CHAIN_BYTES:
                raise QueueError(f"descriptor chain exceeds {MAX_CHAIN_BYTES} bytes")
            try:
                view = self.mem.view(addr, length)
            except GuestMemoryError as e:
                raise QueueError(f"descriptor {index}: {e}") from None
            if flags & VIRTQ_DESC_F_WRITE:
                chain.writable.append(view)
                chain.writable_len += length
            else:
                if chain.writable:
                    raise QueueError(f"descriptor {index}: readable buffer after a writable one")
                chain.readable.append(view)
                chain.readable_len += length
            if not flags & VIRTQ_DESC_F_NEXT:
                return chain
            index = nxt
        raise QueueError(f"descriptor chain from {head} is longer than the queue (a loop?)")

    # --- used side -------------------------------------------------------------------------

    def push(self, head: int, written: int) -> None:
        """Return a chain to the driver; `written` = bytes the device wrote into it."""
        if not self.ready:
            return
        assert self._used is not None
        slot = self.next_used % self.size
        _USED_ELEM.pack_into(self._used, 4 + USED_ELEM_SIZE * slot, head, written)
        self.next_used = (self.next_used + 1) & 0xFFFF
        # The element is stored before idx moves (x86 stores are ordered; the driver reads
        # idx first and then the element).
        _U16.pack_into(self._used, 2, self.next_used)

    def needs_interrupt(self) -> bool:
        """Whether the driver wants an interrupt for the entries pushed since the last one."""
        if not self.ready:
            return False
        assert self._avail is not None
        old, new = self._signalled_used, self.next_used
        if old == new:
            return False
        self._signalled_used = new
        if self.event_idx:
            used_event = int(_U16.unpack_from(self._avail, 4 + 2 * self.size)[0])
            # vring_need_event(): did new_idx step past used_event since old?
            return (new - used_event - 1) & 0xFFFF < (new - old) & 0xFFFF
        flags = int(_U16.unpack_from(self._avail, 0)[0])
        return not flags & VIRTQ_AVAIL_F_NO_INTERRUPT
