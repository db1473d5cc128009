"""Split virtqueue parsing over real guest memory: every guest-controlled value is checked."""

from __future__ import annotations

import struct

import pytest

from tests.vmm.virtio.driver import DATA_BASE, Buf, DriverQueue
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio.queue import (
    MAX_CHAIN_BYTES,
    MAX_QUEUE_SIZE,
    VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
    Queue,
    QueueError,
)

SIZE = 8


def make(mem: GuestMemory, event_idx: bool = False) -> tuple[Queue, DriverQueue]:
    dq = DriverQueue(mem, 0x10000, SIZE)
    q = Queue(mem)
    q.size, q.desc_addr, q.driver_addr, q.device_addr = SIZE, dq.desc, dq.avail, dq.used
    q.activate(event_idx=event_idx)
    return q, dq


def raw_desc(mem: GuestMemory, dq: DriverQueue, i: int, addr: int, length: int, flags: int,
             nxt: int) -> None:
    mem.write(dq.desc + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))


def publish(mem: GuestMemory, dq: DriverQueue, head: int) -> None:
    mem.write_u16(dq.avail + 4 + 2 * (dq.avail_idx % SIZE), head)
    dq.avail_idx += 1
    mem.write_u16(dq.avail + 2, dq.avail_idx)


def test_chain_resolves_to_zero_copy_views_of_guest_buffers(mem: GuestMemory) -> None:
    q, dq = make(mem)
    mem.write(DATA_BASE, b"hello")
    dq.submit([Buf(DATA_BASE, 5, False), Buf(DATA_BASE + 0x100, 3, True)])
    chain = q.pop()
    assert chain is not None and chain.head == 0
    assert [bytes(v) for v in chain.readable] == [b"hello"]
    chain.writable[0][:] = b"abc"
    assert mem.read(DATA_BASE + 0x100, 3) == b"abc"
    assert (chain.readable_len, chain.writable_len) == (5, 3)
    assert q.pop() is None
    q.push(chain.head, 3)
    assert dq.used_entries() == [(0, 3)]
    assert q.needs_interrupt()
    assert not q.needs_interrupt()  # nothing new since


def test_descriptor_index_outside_queue_is_refused(mem: GuestMemory) -> None:
    q, dq = make(mem)
    raw_desc(mem, dq, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, SIZE)
    publish(mem, dq, 0)
    with pytest.raises(QueueError, match="index 8"):
        q.pop()


def test_head_index_outside_queue_is_refused(mem: GuestMemory) -> None:
    q, dq = make(mem)
    publish(mem, dq, 0xFFFF)
    with pytest.raises(QueueError):
        q.pop()


def test_descriptor_loop_is_refused(mem: GuestMemory) -> None:
    q, dq = make(mem)
    raw_desc(mem, dq, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 1)
    raw_desc(mem, dq, 1, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 0)
    publish(mem, dq, 0)
    with pytest.raises(QueueError, match="loop"):
        q.pop()


def test_avail_index_too_far_ahead_is_refused(mem: GuestMemory) -> None:
    q, dq = make(mem)
    mem.write_u16(dq.avail + 2, SIZE + 1)
    with pytest.raises(QueueError, match="ahead"):
        q.pop()


@pytest.mark.parametrize(
    "addr,length",
    [(4 << 20, 1), ((4 << 20) - 4, 8), (0xFFFF_FFFF_FFFF_FFF0, 0x20), (0xC000_0000, 16)],
)
def test_buffers_outside_ram_or_overflowing_are_refused(
    mem: GuestMemory, addr: int, length: int
) -> None:
    q, dq = make(mem)
    raw_desc(mem, dq, 0, addr, length, 0, 0)
    publish(mem, dq, 0)
    with pytest.raises(QueueError):
        q.pop()


def test_chain_byte_total_is_capped(mem: GuestMemory) -> None:
    big = GuestMemory.create(MAX_CHAIN_BYTES + (2 << 20))
    try:
        q, dq = make(big)
        raw_desc(big, dq, 0, 0x100000, MAX_CHAIN_BYTES - 1, VIRTQ_DESC_F_NEXT, 1)
        raw_desc(big, dq, 1, 0x100000, 1, 0, 0)
        publish(big, dq, 0)  # exactly the cap: accepted
        chain = q.pop()
        assert chain is not None and chain.readable_len == MAX_CHAIN_BYTES
        raw_desc(big, dq, 2, 0x100000, MAX_CHAIN_BYTES, VIRTQ_DESC_F_NEXT, 3)
        raw_desc(big, dq, 3, 0x100000, 1, 0, 0)
        publish(big, dq, 2)  # one byte more
        with pytest.raises(QueueError, match="exceeds"):
            q.pop()
    finally:
        big.close()


def test_indirect_and_misordered_descriptors_are_refused(mem: GuestMemory) -> None:
    q, dq = make(mem)
    raw_desc(mem, dq, 0, DATA_BASE, 16, VIRTQ_DESC_F_INDIRECT, 0)
    publish(mem, dq, 0)
    with pytest.raises(QueueError, match="indirect"):
        q.pop()
    q2, dq2 = make(mem)
    raw_desc(mem, dq2, 0, DATA_BASE, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1)
    raw_desc(mem, dq2, 1, DATA_BASE, 4, 0, 0)
    publish(mem, dq2, 0)
    with pytest.raises(QueueError, match="readable buffer after"):
        q2.pop()


@pytest.mark.parametrize("size", [0, 3, 6, MAX_QUEUE_SIZE * 2])
def test_queue_size_must_be_power_of_two_within_limit(mem: GuestMemory, size: int) -> None:
    q = Queue(mem)
    q.size, q.desc_addr, q.driver_addr, q.device_addr = size, 0x10000, 0x11000, 0x12000
    with pytest.raises(QueueError, match="power of two"):
        q.activate()


@pytest.mark.parametrize(
    "desc,avail,used",
    [(0x10008, 0x11000, 0x12000), (0x10000, 0x11001, 0x12000), (0x10000, 0x11000, 0x12002),
     (0x3F_FFF0, 0x11000, 0x12000), (0x10000, 0x11000, 0xC000_0000)],
)
def test_ring_addresses_must_be_aligned_and_in_ram(
    mem: GuestMemory, desc: int, avail: int, used: int
) -> None:
    q = Queue(mem)
    q.size, q.desc_addr, q.driver_addr, q.device_addr = SIZE, desc, avail, used
    with pytest.raises(QueueError):
        q.activate()


def test_event_idx_interrupts_only_when_driver_asks(mem: GuestMemory) -> None:
    q, dq = make(mem, event_idx=True)
    used_event = dq.avail + 4 + 2 * SIZE
    mem.write_u16(used_event, 1)  # "interrupt me once used.idx passes 1"
    for _ in range(2):
        dq.submit([Buf(DATA_BASE, 1, True)])
    c = q.pop()
    assert c is not None
    assert mem.read_u16(dq.used + 4 + 8 * SIZE) == 1  # avail_event follows what we consumed
    q.push(c.head, 1)
    assert not q.needs_interrupt()  # used.idx 1: not past 1 yet
    c = q.pop()
    assert c is not None
    q.push(c.head, 1)
    assert q.needs_interrupt()  # used.idx 2 passed used_event 1


def test_ring_indices_wrap_at_16_bits(mem: GuestMemory) -> None:
    q, dq = make(mem, event_idx=True)
    start = 0xFFFE
    q.last_avail = q.next_used = q._signalled_used = start
    dq.avail_idx = dq.used_seen = start
    mem.write_u16(dq.avail + 2, start)
    mem.write_u16(dq.used + 2, start)
    mem.write_u16(dq.avail + 4 + 2 * SIZE, start)  # used_event: interrupt after the first
    for i in range(4):
        dq.submit([Buf(DATA_BASE + 0x100 * i, 8, True)])
    heads = []
    while (c := q.pop()) is not None:
        heads.append(c.head)
        q.push(c.head, 8)
    assert heads == [0, 1, 2, 3] and q.last_avail == 2 and q.next_used == 2
    assert mem.read_u16(dq.used + 4 + 8 * SIZE) == 2  # avail_event wrapped too
    assert [h for h, _ in dq.used_entries()] == [0, 1, 2, 3]
    assert q.needs_interrupt()


@pytest.mark.parametrize("max_size", [0, 3, MAX_QUEUE_SIZE * 2])
def test_a_device_cannot_offer_an_invalid_queue_size(mem: GuestMemory, max_size: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        Queue(mem, max_size)
    assert Queue(mem, MAX_QUEUE_SIZE).max_size == MAX_QUEUE_SIZE


def test_the_largest_queue_and_a_full_ring_are_accepted(mem: GuestMemory) -> None:
    """The edges a driver may use: QueueNum == QueueNumMax, and all `size` entries published."""
    dq = DriverQueue(mem, 0x10000, MAX_QUEUE_SIZE)
    q = Queue(mem)
    q.size, q.desc_addr, q.driver_addr, q.device_addr = MAX_QUEUE_SIZE, dq.desc, dq.avail, dq.used
    q.activate()
    for i in range(MAX_QUEUE_SIZE):
        raw_desc(mem, dq, i, DATA_BASE + 16 * i, 16, VIRTQ_DESC_F_WRITE, 0)
        mem.write_u16(dq.avail + 4 + 2 * i, i)
    mem.write_u16(dq.avail + 2, MAX_QUEUE_SIZE)
    assert q.pending() == MAX_QUEUE_SIZE
    heads = [chain.head for chain in iter(q.pop, None)]
    assert heads == list(range(MAX_QUEUE_SIZE))


def test_a_queue_the_driver_has_not_started_is_inert(mem: GuestMemory) -> None:
    q = Queue(mem)
    q.size, q.desc_addr, q.driver_addr, q.device_addr = SIZE, 0x10000, 0x11000, 0x12000
    mem.write_u16(0x11002, 3)  # a driver scribbling on a ring it never made ready
    before = mem.read(0x10000, 0x3000)
    assert (q.pending(), q.pop(), q.needs_interrupt()) == (0, None, False)
    q.push(0, 16)
    assert mem.read(0x10000, 0x3000) == before
