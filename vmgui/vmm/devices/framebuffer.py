"""Linear framebuffer: guest video memory in a memfd, damage from KVM's dirty log.

Guest-visible contract: `width * height` pixels of x8r8g8b8 (little-endian: bytes B, G, R, X)
starting at `FramebufferInfo.base` with `stride = width * 4`, announced to Linux through
`boot_params.screen_info` (VLFB). There are no registers: the guest just stores pixels.

The machine registers `region` as its own KVM memslot with KVM_MEM_LOG_DIRTY_PAGES and feeds every
KVM_GET_DIRTY_LOG bitmap (1 bit per 4 KiB page) to `add_dirty_log`. Each consumer (a QMP client,
a console) then takes the rows touched since *its* last call, so one reader never steals another's
damage. Because the pixels live in a memfd, a GUI maps the same pages and never copies a frame.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable

from vmgui.vmm import layout
from vmgui.vmm.memory import MemoryRegion, map_region
from vmgui.vmm.record import record

PAGE_SIZE = 4096
BYTES_PER_PIXEL = 4
PIXEL_FORMAT = "x8r8g8b8"
#: Screens smaller than this are useless; larger ones cannot fit layout.FRAMEBUFFER_MAX.
MIN_DIMENSION = 16
#: Damage is kept per consumer; the least recently used one is forgotten beyond this.
MAX_CONSUMERS = 64


@record(frozen=True)
class FramebufferInfo:
    """What the bzImage loader writes into screen_info and what QMP hands to a viewer."""

    base: int
    width: int
    height: int
    stride: int
    size: int  # bytes the guest may touch: stride * height, rounded up to whole pages

    @classmethod
    def for_mode(
        cls, width: int, height: int, base: int = layout.FRAMEBUFFER_BASE
    ) -> FramebufferInfo:
        """Validate a WxH mode; raises ValueError with a one-line reason."""
        if width < MIN_DIMENSION or height < MIN_DIMENSION:
            raise ValueError(
                f"framebuffer {width}x{height} is too small (minimum {MIN_DIMENSION}x{MIN_DIMENSION})"
            )
        stride = width * BYTES_PER_PIXEL
        size = (stride * height + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        if size > layout.FRAMEBUFFER_MAX:
            raise ValueError(
                f"framebuffer {width}x{height} needs {size >> 20} MiB, more than the "
                f"{layout.FRAMEBUFFER_MAX >> 20} MiB window"
            )
        return cls(base, width, height, stride, size)

    @property
    def pages(self) -> int:
        return self.size // PAGE_SIZE

    @property
    def bitmap_bytes(self) -> int:
        """Size of the KVM dirty bitmap for this slot (KVM rounds to 64-bit words)."""
        return (self.pages + 63) // 64 * 8


@record(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


def dirty_page_runs(bitmap: bytes, pages: int) -> list[tuple[int, int]]:
    """[start, end) runs of set bits among the first `pages` bits (KVM bit order: LSB first)."""
    bits = int.from_bytes(bitmap, "little") & ((1 << pages) - 1)
    runs: list[tuple[int, int]] = []
    pos = 0
    while bits:
        zeros = (bits & -bits).bit_length() - 1
        bits >>= zeros
        pos += zeros
        ones = (bits ^ (bits + 1)).bit_length() - 1
        runs.append((pos, pos + ones))
        bits >>= ones
        pos += ones
    return runs


def damage_bands(bitmap: bytes, info: FramebufferInfo) -> list[tuple[int, int]]:
    """Rows [y0, y1) touched by the dirty pages, merged: pages map to full-width bands."""
    bands: list[tuple[int, int]] = []
    for start, end in dirty_page_runs(bitmap, info.pages):
        y0 = start * PAGE_SIZE // info.stride
        y1 = min(info.height, -(-end * PAGE_SIZE // info.stride))
        if y0 >= y1:
            continue  # only the padding after the last row was written
        if bands and y0 <= bands[-1][1]:
            bands[-1] = (bands[-1][0], max(bands[-1][1], y1))
        else:
            bands.append((y0, y1))
    return bands


def damage_rects(bitmap: bytes, info: FramebufferInfo) -> list[Rect]:
    return [Rect(0, y0, info.width, y1 - y0) for y0, y1 in damage_bands(bitmap, info)]


class DamageTracker:
    """Rows changed since each consumer last asked; a new consumer first gets the whole screen."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._rows: OrderedDict[Hashable, bytearray] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, bands: list[tuple[int, int]]) -> None:
        if not bands:
            return
        with self._lock:
            for rows in self._rows.values():
                for y0, y1 in bands:
                    rows[y0:y1] = b"\x01" * (y1 - y0)

    def add_all(self) -> None:
        self.add([(0, self.height)])

    def take(self, consumer: Hashable) -> list[Rect]:
        with self._lock:
            rows = self._rows.pop(consumer, None)
            if rows is None:
                rows = bytearray(b"\x01") * self.height
            self._rows[consumer] = bytearray(self.height)
            while len(self._rows) > MAX_CONSUMERS:
                self._rows.popitem(last=False)
        rects: list[Rect] = []
        y = rows.find(1)
        while y >= 0:
            end = rows.find(0, y)
            if end < 0:
                end = self.height
            rects.append(Rect(0, y, self.width, end - y))
            y = rows.find(1, end)
        return rects

    def forget(self, consumer: Hashable) -> None:
        with self._lock:
            self._rows.pop(consumer, None)


class Framebuffer:
    """The memfd-backed pixel region plus per-consumer damage."""

    MEMFD_NAME = "vmgui-framebuffer"

    def __init__(self, width: int, height: int, base: int = layout.FRAMEBUFFER_BASE) -> None:
        self.info = FramebufferInfo.for_mode(width, height, base)
        self.region: MemoryRegion = map_region(base, self.info.size, memfd_name=self.MEMFD_NAME)
        self.damage = DamageTracker(width, height)

    @property
    def fd(self) -> int:
        """The memfd; map it MAP_SHARED (size `info.size`) to see the guest's pixels live."""
        return self.region.fd

    def pixels(self) -> memoryview:
        """Live view of the visible pixels (stride * height bytes)."""
        return memoryview(self.region.mm)[: self.info.stride * self.info.height]

    def add_dirty_log(self, bitmap: bytes) -> None:
        """Fold one KVM_GET_DIRTY_LOG bitmap for this slot into every consumer's damage."""
        self.damage.add(damage_bands(bitmap, self.info))

    def take_damage(self, consumer: Hashable) -> list[Rect]:
        return self.damage.take(consumer)

    def screendump(self, path: str, fmt: str = "ppm") -> None:
        """Write the current picture as PPM (P6, QEMU's format) or PNG; OSError/ValueError."""
        from vmgui.vmm.screendump import write_screendump

        i = self.info
        write_screendump(path, fmt, self.pixels(), i.width, i.height, i.stride)

    def close(self) -> None:
        if self.region.fd < 0:
            return
        with contextlib.suppress(BufferError):  # a view is still exported: dies with the process
            self.region.mm.close()
        os.close(self.region.fd)
        self.region.fd = -1
