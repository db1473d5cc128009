"""boot_params.screen_info for a linear framebuffer, so vesafb/simplefb draw with no GPU model.

The guest learns the framebuffer only from here: VIDEO_TYPE_VLFB, its base, geometry and the
x8r8g8b8 channel layout. lfb_size is in 64 KiB units (vesafb multiplies by 65536).
"""

from __future__ import annotations

import struct

from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.record import record

SCREEN_INFO_SIZE = 0x40
VIDEO_TYPE_VLFB = 0x23
VIDEO_CAPABILITY_SKIP_QUIRKS = 1 << 0
VIDEO_CAPABILITY_64BIT_BASE = 1 << 1
BYTES_PER_PIXEL = 4
_LFB_UNIT = 64 * 1024


@record(frozen=True)
class ScreenInfo:
    """What the boot protocol tells Linux about the linear framebuffer (struct screen_info).

    The loader's own view, kept apart from `devices.framebuffer.FramebufferInfo` (the device's
    memslot, page-rounded) as linux-loader keeps its boot parameters apart from devices.
    """

    base: int
    width: int
    height: int
    stride: int = 0

    @property
    def line_length(self) -> int:
        return self.stride or self.width * BYTES_PER_PIXEL

    @property
    def size(self) -> int:
        return self.line_length * self.height


def encode_screen_info(fb: ScreenInfo) -> bytes:
    """The 64-byte struct screen_info (include/uapi/linux/screen_info.h) for `fb`."""
    if not (0 < fb.width <= 0xFFFF and 0 < fb.height <= 0xFFFF):
        raise BootError(f"framebuffer size {fb.width}x{fb.height} is out of range")
    if not (fb.width * BYTES_PER_PIXEL <= fb.line_length <= 0xFFFF):
        raise BootError(f"framebuffer stride {fb.line_length} does not fit width {fb.width}")
    if fb.base < 0 or fb.base >= 1 << 64:
        raise BootError(f"framebuffer base {fb.base:#x} is out of range")
    lfb_size = (fb.size + _LFB_UNIT - 1) // _LFB_UNIT
    caps = VIDEO_CAPABILITY_SKIP_QUIRKS
    if fb.base >> 32:
        caps |= VIDEO_CAPABILITY_64BIT_BASE
    si = bytearray(SCREEN_INFO_SIZE)
    si[0x0F] = VIDEO_TYPE_VLFB
    struct.pack_into(
        "<HHHII",
        si,
        0x12,
        fb.width,
        fb.height,
        8 * BYTES_PER_PIXEL,
        fb.base & 0xFFFF_FFFF,
        lfb_size,
    )
    struct.pack_into("<H", si, 0x24, fb.line_length)
    # red, green, blue, reserved: (size, position) for x8r8g8b8
    si[0x26:0x2E] = bytes((8, 16, 8, 8, 8, 0, 8, 24))
    struct.pack_into("<H", si, 0x32, 1)  # pages
    struct.pack_into("<II", si, 0x36, caps, fb.base >> 32)
    return bytes(si)
