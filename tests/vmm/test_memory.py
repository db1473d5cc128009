"""GuestMemory.check, the one place guest addresses are checked: each rule at its exact edge.

memoryview and mmap slicing truncate silently, so a missing check does not raise by itself: every
refusal here is asserted as GuestMemoryError, and every edge that must be accepted is asserted to
give exactly the bytes asked for (bench/mutate_checks.py shows each check is needed).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import need
from vmgui.vmm.memory import (
    HIGH_RAM_START,
    MAX_ACCESS,
    MMIO_HOLE_START,
    GuestMemory,
    GuestMemoryError,
    map_region,
)

PAGE = 0x1000
#: Three regions: [0, 64K) and [64K, 128K) touch (a straddle must still fail), [1M, 1M+64K)
#: lies after a hole.
A, B, C = 0x0, 0x10000, 0x100000
SIZE = 0x10000


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    m = GuestMemory([map_region(C, SIZE), map_region(A, SIZE), map_region(B, SIZE)])
    yield m
    m.close()


def region_of(mem: GuestMemory, addr: int, length: int) -> tuple[int, int]:
    r, off = mem.check(addr, length)
    return r.guest_addr, off


def test_exact_edges_are_accepted_with_every_byte(mem: GuestMemory) -> None:
    assert region_of(mem, 0, 16) == (A, 0)
    assert region_of(mem, B, 1) == (B, 0)  # the first byte of the second of two touching regions
    assert region_of(mem, B - 1, 1) == (A, SIZE - 1)
    assert region_of(mem, C + SIZE - 16, 16) == (C, SIZE - 16)  # ends exactly at the region's end
    assert region_of(mem, C, SIZE) == (C, 0)
    assert region_of(mem, C + SIZE, 0) == (C, SIZE)  # an empty buffer right after the last byte
    assert region_of(mem, A + 5, 0) == (A, 5)
    mem.write(C + SIZE - 4, b"edge")
    assert mem.read(C + SIZE - 4, 4) == b"edge" and len(mem.view(C, SIZE)) == SIZE


@pytest.mark.parametrize(
    ("addr", "length", "why"),
    [
        (-1, 1, "invalid guest range"),
        (0, -1, "invalid guest range"),
        (0, MAX_ACCESS + 1, "invalid guest range"),
        (B - 8, 16, "leaves RAM"),  # straddles two touching regions: no single mapping holds it
        (C + SIZE - 8, 9, "leaves RAM"),  # one byte past the end
        (B + SIZE - 1, 2, "leaves RAM"),  # into the hole
        (B + SIZE, 1, "not RAM"),  # in the hole
        (C + SIZE, 1, "not RAM"),
        (0xFFFF_FFFF_FFFF_FFF0, 0x20, "not RAM"),
    ],
)
def test_ranges_outside_one_region_are_refused(mem: GuestMemory, addr: int, length: int,
                                               why: str) -> None:
    for access in (lambda: mem.check(addr, length), lambda: mem.view(addr, length),
                   lambda: mem.read(addr, length), lambda: mem.fill(addr, length)):
        with pytest.raises(GuestMemoryError, match=why):
            access()
    assert not mem.contains(addr, length)


def test_writes_outside_ram_change_nothing(mem: GuestMemory) -> None:
    before = [bytes(r.mm) for r in mem.regions]
    with pytest.raises(GuestMemoryError):
        mem.write(B - 2, b"abcd")
    with pytest.raises(GuestMemoryError):
        mem.write_u64(C + SIZE - 4, 0x1122334455667788)
    assert [bytes(r.mm) for r in mem.regions] == before


def test_the_largest_single_access_is_allowed_and_one_more_byte_is_not() -> None:
    try:
        region = map_region(0, MAX_ACCESS + PAGE)  # address space only: pages are never touched
    except (OSError, OverflowError):
        need(False, "cannot reserve 4 GiB of address space here")
        return
    big = GuestMemory([region])
    try:
        assert big.check(0, MAX_ACCESS) == (region, 0)
        with pytest.raises(GuestMemoryError, match="invalid guest range"):
            big.check(0, MAX_ACCESS + 1)
    finally:
        big.close()


def test_regions_may_touch_but_not_overlap() -> None:
    a, b = map_region(0, PAGE), map_region(PAGE, PAGE)
    GuestMemory([b, a])  # touching: fine
    with pytest.raises(ValueError, match="overlapping"):
        GuestMemory([a, map_region(PAGE - 1, PAGE)])
    for r in (a, b):
        r.mm.close()


def test_create_splits_around_the_mmio_hole() -> None:
    with pytest.raises(ValueError, match="positive"):
        GuestMemory.create(0)
    m = GuestMemory.create(MMIO_HOLE_START + 2 * PAGE)  # address space only
    try:
        assert [(r.guest_addr, r.size) for r in m.regions] == [
            (0, MMIO_HOLE_START), (HIGH_RAM_START, 2 * PAGE)]
        assert not m.contains(MMIO_HOLE_START, 1) and m.contains(HIGH_RAM_START, 2 * PAGE)
    finally:
        m.close()
