"""Pure RFB rectangle decoders: payload bytes in, a (h, w) uint32 pixel array out.

Pixels are x8r8g8b8 values (0x00RRGGBB), the client pixel format of `wire.CLIENT_PIXEL_FORMAT`.
Decoders never touch the framebuffer: the client checks the rectangle against the framebuffer
and copies the result in, so a hostile payload can at worst produce a wrong-looking rectangle,
never a write outside the image. Every count, index and inflated size is checked here and a
violation raises `DecodeError` (one sentence). Compressed streams are one `zlib.decompressobj`
each (Zlib: one, ZRLE: one, Tight: four) and inflate at most what the rectangle needs.

Decoders are plain CPU work without I/O, so the client may run large ones in a thread.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vmgui.console.rfb.wire import ProtocolError

Pixels = npt.NDArray[np.uint32]

#: JPEG hook for Tight: bytes -> (width, height, x8r8g8b8 little-endian rows of width*4 bytes).
#: The ui layer passes one built on QImage; without one the client never asks for JPEG.
JpegDecoder = Callable[[bytes], tuple[int, int, bytes]]

TIGHT_MIN_TO_COMPRESS = 12  # Tight data shorter than this is sent without zlib
TIGHT_MAX_COMPACT_LENGTH = (1 << 22) - 1  # what a 3-byte compact length can say
TIGHT_FILL = 0x8
TIGHT_JPEG = 0x9
TIGHT_FILTER_COPY = 0
TIGHT_FILTER_PALETTE = 1
TIGHT_FILTER_GRADIENT = 2
ZRLE_TILE = 64
ZRLE_MAX_PALETTE_RLE = 127
#: ZRLE's worst honest case per pixel: a plain-RLE run of one (3-byte CPIXEL + 1 length byte).
ZRLE_WORST_BYTES_PER_PIXEL = 4
ZRLE_WORST_TILE_OVERHEAD = 1 + ZRLE_MAX_PALETTE_RLE * 3


class DecodeError(ProtocolError):
    """A rectangle's payload is malformed; the message is one sentence."""


# --- pixel conversions -----------------------------------------------------------------------


def _u8(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def rgb24(data: bytes | memoryview, count: int) -> Pixels:
    """`count` pixels of 3 bytes R, G, B (Tight's TPIXEL) -> uint32."""
    if len(data) != count * 3:
        raise DecodeError("The VNC server sent a truncated rectangle.")
    out = np.zeros((count, 4), dtype=np.uint8)  # memory order B, G, R, X
    out[:, 2::-1] = _u8(data).reshape(count, 3)
    return out.view("<u4").reshape(count).astype(np.uint32, copy=False)


def bgr24(data: bytes | memoryview, count: int) -> Pixels:
    """`count` pixels of 3 bytes B, G, R (ZRLE's CPIXEL for our little-endian format)."""
    if len(data) != count * 3:
        raise DecodeError("The VNC server sent a truncated rectangle.")
    out = np.zeros((count, 4), dtype=np.uint8)
    out[:, :3] = _u8(data).reshape(count, 3)
    return out.view("<u4").reshape(count).astype(np.uint32, copy=False)


# --- zlib ------------------------------------------------------------------------------------


class ZlibStream:
    """One persistent inflate stream that never produces more than asked."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj()

    def reset(self) -> None:
        self._d = zlib.decompressobj()

    def inflate(self, data: bytes, limit: int, exact: bool = True) -> bytes:
        """Inflate `data`: exactly `limit` bytes (or at most, with exact=False)."""
        try:
            out = self._d.decompress(data, limit)
            tail = self._d.unconsumed_tail
            # What is left may only be flush markers, which inflate to nothing.
            if tail and self._d.decompress(tail, 1):
                raise DecodeError(
                    "The VNC server sent compressed data that inflates past its rectangle."
                )
        except zlib.error:
            raise DecodeError("The VNC server sent corrupt compressed data.") from None
        if exact and len(out) != limit:
            raise DecodeError("The VNC server sent a truncated compressed rectangle.")
        return out


# --- Raw and Zlib ----------------------------------------------------------------------------


def decode_raw(data: bytes, w: int, h: int) -> Pixels:
    if len(data) != w * h * 4:
        raise DecodeError("The VNC server sent a truncated rectangle.")
    return np.frombuffer(data, dtype="<u4").reshape(h, w).astype(np.uint32, copy=False)


def decode_zlib(stream: ZlibStream, data: bytes, w: int, h: int) -> Pixels:
    return decode_raw(stream.inflate(data, w * h * 4), w, h)


def zlib_input_limit(raw_size: int) -> int:
    """Most compressed bytes an honest server needs for `raw_size` bytes (zlib's bound + slack)."""
    return raw_size + raw_size // 1000 + 64 * 1024


# --- Tight -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TightRect:
    """One Tight rectangle as read off the wire (the client reads, `TightDecoder` decodes)."""

    control: int  # the control byte: low 4 bits reset streams, high 4 bits the method
    fill: bytes = b""  # TIGHT_FILL: one TPIXEL
    jpeg: bytes = b""  # TIGHT_JPEG
    filter: int = TIGHT_FILTER_COPY
    palette: bytes = b""  # TPIXELs of the palette filter
    data: bytes = b""  # filter data, zlib-compressed when `compressed`
    compressed: bool = False

    @property
    def method(self) -> int:
        return self.control >> 4

    @property
    def stream(self) -> int:
        return (self.control >> 4) & 0x3


def tight_data_size(filter_id: int, palette_size: int, w: int, h: int) -> int:
    """Bytes of filter output for a w x h rectangle."""
    if filter_id == TIGHT_FILTER_PALETTE:
        return h * ((w + 7) // 8) if palette_size == 2 else w * h
    return w * h * 3


class TightDecoder:
    def __init__(self, jpeg_decoder: JpegDecoder | None = None) -> None:
        self.streams = [ZlibStream() for _ in range(4)]
        self.jpeg_decoder = jpeg_decoder

    def decode(self, rect: TightRect, w: int, h: int) -> Pixels:
        for i in range(4):
            if rect.control & (1 << i):
                self.streams[i].reset()
        if rect.method == TIGHT_FILL:
            return np.full((h, w), rgb24(rect.fill, 1)[0], dtype=np.uint32)
        if rect.method == TIGHT_JPEG:
            return self._jpeg(rect.jpeg, w, h)
        if rect.method > TIGHT_JPEG:
            raise DecodeError("The VNC server sent a Tight rectangle of an unknown kind.")
        palette_size = len(rect.palette) // 3
        size = tight_data_size(rect.filter, palette_size, w, h)
        if rect.compressed:
            data = self.streams[rect.stream].inflate(rect.data, size)
        elif len(rect.data) != size:
            raise DecodeError("The VNC server sent a truncated rectangle.")
        else:
            data = rect.data
        if rect.filter == TIGHT_FILTER_COPY:
            return rgb24(data, w * h).reshape(h, w)
        if rect.filter == TIGHT_FILTER_PALETTE:
            return _tight_palette(data, rgb24(rect.palette, palette_size), w, h)
        if rect.filter == TIGHT_FILTER_GRADIENT:
            return gradient(data, w, h)
        raise DecodeError("The VNC server sent a Tight rectangle with an unknown filter.")

    def _jpeg(self, data: bytes, w: int, h: int) -> Pixels:
        if self.jpeg_decoder is None:
            raise DecodeError("The VNC server sent JPEG although vmgui did not ask for it.")
        try:
            jw, jh, pixels = self.jpeg_decoder(data)
        except Exception:
            raise DecodeError("The VNC server sent a JPEG picture that cannot be read.") from None
        if (jw, jh) != (w, h) or len(pixels) != w * h * 4:
            raise DecodeError("The VNC server sent a JPEG picture of the wrong size.")
        return decode_raw(pixels, w, h)


def _tight_palette(data: bytes, palette: Pixels, w: int, h: int) -> Pixels:
    n = len(palette)
    if n == 2:
        bits = np.unpackbits(_u8(data).reshape(h, (w + 7) // 8), axis=1)[:, :w]
        return palette[bits]
    index = _u8(data).reshape(h, w)
    if int(index.max(initial=0)) >= n:
        raise DecodeError("The VNC server sent a palette index beyond its palette.")
    return palette[index]


def gradient(data: bytes, w: int, h: int) -> Pixels:
    """Tight's gradient filter: each component is predicted as left + above - above-left,
    clamped to 0..255, and the data holds the difference modulo 256.

    Without the clamp a row is a running sum (numpy's cumsum) of the data plus the row above's
    steps; the clamp only matters where left + above - above-left leaves 0..255, so each row is
    summed at once, checked, and resumed after the first clamped pixel. A row with more than
    `GRADIENT_MAX_RESUMES` clamps (hard edges, unusual for this filter) finishes pixel by pixel.
    """
    if len(data) != w * h * 3:
        raise DecodeError("The VNC server sent a truncated rectangle.")
    diff = _u8(data).reshape(h, w, 3).astype(np.int32)
    out = np.zeros((h, w, 3), dtype=np.int32)
    up = np.zeros((w, 3), dtype=np.int32)
    for y in range(h):
        _gradient_row(diff[y], np.diff(up, axis=0, prepend=0), out[y])
        up = out[y]
    return ((out[..., 0] << 16) | (out[..., 1] << 8) | out[..., 2]).astype(np.uint32)


GRADIENT_MAX_RESUMES = 8


def _gradient_row(diff: np.ndarray, up_step: np.ndarray, row: np.ndarray) -> None:
    """Fill `row` (w x 3); `up_step[x]` is above[x] - above[x-1] (above[-1] = 0)."""
    w = len(diff)
    start = 0
    left = np.zeros(3, dtype=np.int32)
    for _ in range(GRADIENT_MAX_RESUMES):
        steps = up_step[start:] + diff[start:]
        values = (left + np.cumsum(steps, axis=0)) & 0xFF
        lefts = np.concatenate((left[None], values[:-1]))
        predicted = lefts + up_step[start:]
        clamped = ((predicted < 0) | (predicted > 255)).any(axis=1)
        if not clamped.any():
            row[start:] = values
            return
        k = int(clamped.argmax())
        row[start : start + k] = values[:k]
        x = start + k
        row[x] = (np.clip(predicted[k], 0, 255) + diff[x]) & 0xFF
        left = row[x]
        start = x + 1
        if start == w:
            return
    prev = [int(c) for c in left]
    for x in range(start, w):
        for c in range(3):
            p = prev[c] + int(up_step[x, c])
            prev[c] = (min(255, max(0, p)) + int(diff[x, c])) & 0xFF
        row[x] = prev


# --- ZRLE ------------------------------------------------------------------------------------


def zrle_inflated_limit(w: int, h: int) -> int:
    tiles = -(-w // ZRLE_TILE) * -(-h // ZRLE_TILE)
    return w * h * ZRLE_WORST_BYTES_PER_PIXEL + tiles * ZRLE_WORST_TILE_OVERHEAD


class ZrleDecoder:
    def __init__(self) -> None:
        self.stream = ZlibStream()

    def decode(self, data: bytes, w: int, h: int) -> Pixels:
        buf = self.stream.inflate(data, zrle_inflated_limit(w, h), exact=False)
        out = np.empty((h, w), dtype=np.uint32)
        pos = 0
        try:
            for ty in range(0, h, ZRLE_TILE):
                th = min(ZRLE_TILE, h - ty)
                for tx in range(0, w, ZRLE_TILE):
                    tw = min(ZRLE_TILE, w - tx)
                    tile, pos = _zrle_tile(buf, pos, tw, th)
                    out[ty : ty + th, tx : tx + tw] = tile
        except IndexError:
            raise DecodeError("The VNC server sent a truncated ZRLE rectangle.") from None
        return out


def _zrle_tile(buf: bytes, pos: int, tw: int, th: int) -> tuple[Pixels | int, int]:
    kind = buf[pos]
    pos += 1
    count = tw * th
    if kind == 0:
        end = pos + count * 3
        return bgr24(buf[pos:end], count).reshape(th, tw), end
    if kind == 1:
        return int(bgr24(buf[pos : pos + 3], 1)[0]), pos + 3
    if 2 <= kind <= 16:
        end = pos + kind * 3
        palette = bgr24(buf[pos:end], kind)
        bits = 1 if kind == 2 else 2 if kind <= 4 else 4
        row_bytes = (tw * bits + 7) // 8
        packed = buf[end : end + row_bytes * th]
        if len(packed) != row_bytes * th:
            raise IndexError
        unpacked = np.unpackbits(_u8(packed).reshape(th, row_bytes), axis=1)
        weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint8)
        index = (unpacked[:, : (row_bytes * 8) // bits * bits].reshape(th, -1, bits) @ weights)
        index = index[:, :tw]
        if int(index.max(initial=0)) >= kind:
            raise DecodeError("The VNC server sent a palette index beyond its palette.")
        return palette[index], end + row_bytes * th
    if kind == 128:
        return _zrle_rle(buf, pos, tw, th, None)
    if kind >= 130:
        n = kind - 128
        end = pos + n * 3
        return _zrle_rle(buf, end, tw, th, bgr24(buf[pos:end], n))
    raise DecodeError(f"The VNC server sent a ZRLE tile of unknown type {kind}.")


def _zrle_rle(
    buf: bytes, pos: int, tw: int, th: int, palette: Pixels | None
) -> tuple[Pixels, int]:
    count = tw * th
    colours: list[int] = []
    runs: list[int] = []
    total = 0
    while total < count:
        if palette is None:
            colour = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            pos += 3
            long_run = True
        else:
            index = buf[pos]
            pos += 1
            long_run = bool(index & 0x80)
            index &= 0x7F
            if index >= len(palette):
                raise DecodeError("The VNC server sent a palette index beyond its palette.")
            colour = int(palette[index])
        run = 1
        if long_run:
            while True:
                b = buf[pos]
                pos += 1
                run += b
                if b != 255:
                    break
        colours.append(colour)
        runs.append(run)
        total += run
    if total != count:
        raise DecodeError("The VNC server sent a ZRLE run longer than its tile.")
    pixels = np.repeat(np.array(colours, dtype=np.uint32), runs)
    return pixels.reshape(th, tw), pos


# --- rich cursor -----------------------------------------------------------------------------


def cursor_argb(pixels: bytes, mask: bytes, w: int, h: int) -> bytes:
    """RFB Cursor pseudo-encoding -> ARGB32 (QImage.Format_ARGB32) with the mask as alpha."""
    row_bytes = (w + 7) // 8
    if len(pixels) != w * h * 4 or len(mask) != row_bytes * h:
        raise DecodeError("The VNC server sent a truncated cursor.")
    bits = np.unpackbits(_u8(mask).reshape(h, row_bytes), axis=1)[:, :w].astype(bool)
    rgb = np.frombuffer(pixels, dtype="<u4").reshape(h, w) | np.uint32(0xFF000000)
    return np.where(bits, rgb, np.uint32(0)).astype("<u4").tobytes()
