"""Screendump encoders: x8r8g8b8 framebuffer -> PPM (P6, byte-for-byte QEMU's) or PNG.

No per-pixel Python: channels are pulled out with extended slices (C loops inside bytes), so a
1024x768 frame encodes in milliseconds. PNG uses zlib only (no Pillow dependency in the VMM).
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import zlib

Buffer = bytes | bytearray | memoryview

#: zlib level for PNG: screenshots are mostly flat colour, so level 1 is both fast and small.
PNG_COMPRESSION = 1


def _packed(pixels: Buffer, width: int, height: int, stride: int) -> bytes:
    """The visible pixels as one contiguous x8r8g8b8 buffer (drops any per-row padding)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid picture size {width}x{height}")
    row = width * 4
    if stride < row:
        raise ValueError(f"stride {stride} is smaller than a row ({row} bytes)")
    view = memoryview(pixels).cast("B")
    if len(view) < stride * (height - 1) + row:
        raise ValueError("pixel buffer is smaller than the picture")
    if stride == row:
        return bytes(view[: row * height])
    return b"".join(view[y * stride : y * stride + row] for y in range(height))


def to_rgb(pixels: Buffer, width: int, height: int, stride: int) -> bytes:
    """Packed 24-bit RGB from x8r8g8b8 (little-endian memory order B, G, R, X)."""
    src = _packed(pixels, width, height, stride)
    rgb = bytearray(width * height * 3)
    rgb[0::3] = src[2::4]
    rgb[1::3] = src[1::4]
    rgb[2::3] = src[0::4]
    return bytes(rgb)


def encode_ppm(pixels: Buffer, width: int, height: int, stride: int) -> bytes:
    """Binary PPM exactly as QEMU's screendump writes it."""
    return b"P6\n%d %d\n255\n" % (width, height) + to_rgb(pixels, width, height, stride)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: Buffer, width: int, height: int, stride: int) -> bytes:
    """8-bit RGB PNG, filter type 0 on every row."""
    rgb = to_rgb(pixels, width, height, stride)
    row = width * 3
    raw = bytearray((row + 1) * height)  # each row: filter byte 0, then the row
    view = memoryview(raw)
    for y in range(height):
        start = y * (row + 1) + 1
        view[start : start + row] = rgb[y * row : (y + 1) * row]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), PNG_COMPRESSION))
        + _chunk(b"IEND", b"")
    )


ENCODERS = {"ppm": encode_ppm, "png": encode_png}


#: Random temp-file names tried before giving up (a collision needs 2^64 bad luck or a hostile
#: user racing us in the target directory).
TEMP_ATTEMPTS = 16


def write_screendump(
    path: str, fmt: str, pixels: Buffer, width: int, height: int, stride: int
) -> None:
    """Encode and write to `path` (temp file + rename, so a reader never sees half a picture).

    The temp file gets a random name next to `path`, created with O_EXCL|O_NOFOLLOW: another
    user of that directory can neither predict it nor plant a symlink there that we would
    follow and write through.
    """
    encoder = ENCODERS.get(fmt)
    if encoder is None:
        raise ValueError(f"unknown screendump format '{fmt}' (use ppm or png)")
    data = encoder(pixels, width, height, stride)
    directory, name = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(TEMP_ATTEMPTS):
        tmp = os.path.join(directory, f".{name}.{os.urandom(8).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, 0o644)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary file name", path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
