"""Hypothesis strategies for hostile virtio drivers (used by test_fuzz.py and bench/fuzz_virtio.py)."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from tests.vmm.virtio.fuzzing import ADDRESS_CHOICES, DEVICES, REGIONS, FuzzCase
from vmgui.vmm.virtio.queue import VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE

u16 = st.integers(0, 0xFFFF)
# Each field is mostly plausible (so requests get through to the device code) and sometimes
# hostile (so every check is hit).
small_index = st.one_of(st.integers(0, 7), st.integers(0, 7), st.integers(0, 7), u16)
#: Near the seams and ends of every region (see fuzzing.REGIONS), where truncation would hide.
edges = st.builds(lambda base, delta: max(base + delta, 0),
                  st.sampled_from([start + off for start, size in REGIONS for off in (0, size)]),
                  st.integers(-0x1000, 0x100))
addresses = st.one_of(st.integers(0x100000, 0x10FFFF), st.integers(0x100000, 0x10FFFF),
                      st.sampled_from(ADDRESS_CHOICES), edges, st.integers(0, (1 << 64) - 1))
lengths = st.one_of(st.integers(0, 0x1200), st.sampled_from([1, 16, 512, 1024, 4096]),
                    st.sampled_from([0, 17, 1 << 20, 0xFFFF_FFFF]))
plausible_flags = st.sampled_from([0, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
                                   VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE])
flags = st.one_of(plausible_flags, plausible_flags, plausible_flags,
                  st.just(VIRTQ_DESC_F_INDIRECT), u16)
#: A buffer ending within 64 bytes of a region's end, or crossing it by up to 64 bytes: where a
#: missing "leaves RAM" check would only truncate the buffer, never raise.
at_region_end = st.builds(
    lambda end, before, after, fl, nxt: (end - before, before + after, fl, nxt),
    st.sampled_from([start + size for start, size in REGIONS]),
    st.integers(1, 64), st.integers(0, 64), plausible_flags, small_index,
)
descriptor = st.one_of(st.tuples(addresses, lengths, flags, small_index), at_region_end)
blk_header = st.builds(
    lambda kind, sector: struct.pack("<IIQ", kind, 0, sector),
    st.sampled_from([0, 0, 1, 1, 4, 8, 11, 99]),
    st.one_of(st.integers(0, 70), st.integers(0, (1 << 64) - 1)),
)


def _link(bufs: list[tuple[int, int, bool]], ordered: bool) -> list[tuple[int, int, int, int]]:
    """Buffers as one properly linked chain from descriptor 0 (readable first if `ordered`)."""
    if ordered:
        bufs = sorted(bufs, key=lambda b: b[2])
    return [(addr, length, (VIRTQ_DESC_F_WRITE if w else 0)
             | (VIRTQ_DESC_F_NEXT if i + 1 < len(bufs) else 0), i + 1)
            for i, (addr, length, w) in enumerate(bufs)]


#: Chains that link up, so the device's own request parsing is reached: zero-length and 1-byte
#: buffers, headers split across descriptors, status bytes in odd places.
chain_buffer = st.tuples(
    st.one_of(st.integers(0x100000, 0x100040), addresses),
    st.one_of(st.sampled_from([0, 1, 2, 15, 16, 17, 512]), lengths),
    st.booleans(),
)
linked_chain = st.builds(_link, st.lists(chain_buffer, min_size=1, max_size=6), st.booleans())
reg_op = st.tuples(
    st.booleans(),
    st.one_of(st.integers(0, 0x0FF).map(lambda x: x & ~3), st.integers(0, 0x140)),
    st.sampled_from([1, 2, 4, 8]),
    st.one_of(st.integers(0, 0xFF), st.integers(0, 0xFFFF_FFFF)),
)


def _mostly(usual: int, others: list[int]) -> st.SearchStrategy[int]:
    """`usual` about 2 times in 3, else one of `others` (one_of weights are not reliable)."""
    n = len(others)
    return st.integers(0, 3 * n - 1).map(lambda i: others[i - 2 * n] if i >= 2 * n else usual)


@st.composite
def fuzz_cases(draw: st.DrawFn, device: str | None = None) -> FuzzCase:
    kind = device or draw(st.sampled_from(DEVICES))
    linked = draw(st.booleans())
    return FuzzCase(
        device=kind,
        queue_size=draw(_mostly(8, [1, 2, 4, 16, 256, 3, 0, 512, 0xFFFF_FFFF])),
        event_idx=draw(st.booleans()),
        kick=draw(_mostly(1 if kind == "net" else 0, [0, 1, 2, 0xFFFF])),
        pre_ops=draw(st.lists(reg_op, max_size=6)),
        post_ops=draw(st.lists(reg_op, max_size=6)),
        descriptors=draw(linked_chain if linked else st.lists(descriptor, max_size=12)),
        avail_ring=draw(st.lists(st.just(0) if linked else small_index, max_size=12)),
        avail_idx=draw(st.one_of(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8), u16)),
        memory_fill=draw(st.one_of(blk_header, st.binary(min_size=0, max_size=32))),
        rx_frames=draw(st.lists(st.integers(0, 2000), max_size=4)),
    )
