"""Framebuffer: mode validation, dirty-bitmap -> damage bands (pure), per-consumer damage."""

from __future__ import annotations

import mmap
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmgui.vmm import layout
from vmgui.vmm.devices.framebuffer import (
    PAGE_SIZE,
    DamageTracker,
    Framebuffer,
    FramebufferInfo,
    Rect,
    damage_bands,
    damage_rects,
    dirty_page_runs,
)


def bitmap(pages: set[int], info: FramebufferInfo) -> bytes:
    n = 0
    for p in pages:
        n |= 1 << p
    return n.to_bytes(info.bitmap_bytes, "little")


def test_mode_validation() -> None:
    info = FramebufferInfo.for_mode(1024, 768)
    assert (info.base, info.stride, info.size, info.pages) == (
        layout.FRAMEBUFFER_BASE,
        4096,
        3 << 20,
        768,
    )
    assert info.bitmap_bytes == 96
    with pytest.raises(ValueError, match="too small"):
        FramebufferInfo.for_mode(8, 600)
    with pytest.raises(ValueError, match="MiB window"):
        FramebufferInfo.for_mode(8192, 8192)
    assert FramebufferInfo.for_mode(4096, 2048).size == layout.FRAMEBUFFER_MAX


def test_page_runs() -> None:
    assert dirty_page_runs(bytes([0b1011_0110, 0b1]), 16) == [(1, 3), (4, 6), (7, 9)]
    assert dirty_page_runs(b"\xff" * 8, 10) == [(0, 10)]  # bits past the slot are ignored
    assert dirty_page_runs(b"\x00" * 8, 64) == []


def test_bands_for_1024x768_one_row_per_page() -> None:
    info = FramebufferInfo.for_mode(1024, 768)
    assert damage_rects(bitmap({0, 1, 2, 10, 767}, info), info) == [
        Rect(0, 0, 1024, 3),
        Rect(0, 10, 1024, 1),
        Rect(0, 767, 1024, 1),
    ]


def test_bands_when_rows_straddle_pages() -> None:
    info = FramebufferInfo.for_mode(800, 600)  # stride 3200: pages and rows do not line up
    # page 1 = bytes 4096..8191 = rows 1 (3200..6399) and 2 (6400..9599)
    assert damage_bands(bitmap({1}, info), info) == [(1, 3)]
    # pages 1 and 2 overlap at row 2 and merge into one band
    assert damage_bands(bitmap({1, 2}, info), info) == [(1, 4)]
    last = info.pages - 1  # only the padding after the last row may be on the last page
    assert all(y1 <= 600 for _, y1 in damage_bands(bitmap({last}, info), info))


@given(
    st.sets(st.integers(0, 599), max_size=40),
    st.sampled_from([(640, 480), (800, 600), (1000, 300)]),
)
def test_bands_cover_exactly_the_written_rows_pages(
    pages_rows: set[int], mode: tuple[int, int]
) -> None:
    """Any set of written rows: the damage covers them, and every damaged row shares a dirty page."""
    info = FramebufferInfo.for_mode(*mode)
    rows = {r for r in pages_rows if r < info.height}
    pages = {r * info.stride // PAGE_SIZE for r in rows}
    bands = damage_bands(bitmap(pages, info), info)
    covered = {y for y0, y1 in bands for y in range(y0, y1)}
    assert rows <= covered
    for y in covered:
        first, last = y * info.stride // PAGE_SIZE, ((y + 1) * info.stride - 1) // PAGE_SIZE
        assert pages & set(range(first, last + 1))
    assert all(a[1] < b[0] for a, b in zip(bands, bands[1:], strict=False))  # merged, sorted


def test_tracker_is_per_consumer() -> None:
    t = DamageTracker(100, 50)
    assert t.take("a") == [Rect(0, 0, 100, 50)]
    assert t.take("a") == []
    t.add([(3, 5), (10, 11)])
    assert t.take("b") == [Rect(0, 0, 100, 50)]  # a newcomer gets the whole screen
    assert t.take("a") == [Rect(0, 3, 100, 2), Rect(0, 10, 100, 1)]
    assert t.take("b") == []
    t.add([(49, 50)])
    assert t.take("b") == [Rect(0, 49, 100, 1)]


def test_framebuffer_memfd_is_shared() -> None:
    fb = Framebuffer(64, 64)
    try:
        assert fb.region.guest_addr == layout.FRAMEBUFFER_BASE and fb.region.size == fb.info.size
        with mmap.mmap(os.dup(fb.fd), fb.info.size, mmap.MAP_SHARED, mmap.PROT_READ) as mm:
            fb.pixels()[100:104] = b"\x11\x22\x33\x00"
            assert mm[100:104] == b"\x11\x22\x33\x00"
    finally:
        fb.close()


def test_framebuffer_memfd_is_sealed_against_resizing() -> None:
    """Viewers get this fd: shrinking it under the VMM's mapping would kill the VMM (SIGBUS)."""
    fb = Framebuffer(64, 64)
    try:
        viewer = os.dup(fb.fd)
        try:
            for size in (0, fb.info.size - mmap.PAGESIZE, fb.info.size * 2):
                with pytest.raises(PermissionError):
                    os.ftruncate(viewer, size)
            assert os.fstat(viewer).st_size == fb.info.size
        finally:
            os.close(viewer)
        fb.pixels()[-4:] = b"\x01\x02\x03\x00"  # the last page is still there
    finally:
        fb.close()
