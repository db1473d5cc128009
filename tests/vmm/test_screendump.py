"""Screendump encoders: PPM byte-exact to QEMU's layout; PNG decodes back to the same pixels."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import pytest

from vmgui.vmm.screendump import encode_png, encode_ppm, to_rgb, write_screendump


def xrgb(pixels: list[tuple[int, int, int]]) -> bytes:
    return b"".join(bytes([b, g, r, 0xAA]) for r, g, b in pixels)


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """A minimal reader for what encode_png writes (filter 0 only), to check round trips."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + body
        )
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
            assert body[8:] == b"\x08\x02\x00\x00\x00"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    rows = [raw[y * (w * 3 + 1) : (y + 1) * (w * 3 + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    return w, h, b"".join(r[1:] for r in rows)


def test_ppm_matches_qemu_format() -> None:
    px = xrgb([(1, 2, 3), (4, 5, 6), (7, 8, 9), (250, 251, 252)])
    assert encode_ppm(px, 2, 2, 8) == b"P6\n2 2\n255\n" + bytes(
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252]
    )


def test_padded_stride_is_dropped() -> None:
    row0, row1 = xrgb([(1, 2, 3)]), xrgb([(4, 5, 6)])
    assert to_rgb(row0 + b"\xee" * 12 + row1, 1, 2, 16) == bytes([1, 2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match="smaller"):
        to_rgb(row0, 1, 2, 16)


def test_png_round_trip() -> None:
    px = xrgb([(x * 10 % 256, y * 20 % 256, (x ^ y) % 256) for y in range(7) for x in range(5)])
    w, h, rgb = decode_png(encode_png(px, 5, 7, 20))
    assert (w, h) == (5, 7) and rgb == to_rgb(px, 5, 7, 20)


def test_1024x768_is_fast(tmp_path: Path) -> None:
    px = bytes(range(256)) * (1024 * 768 * 4 // 256)
    for fmt in ("ppm", "png"):
        start = time.perf_counter()
        write_screendump(str(tmp_path / f"s.{fmt}"), fmt, px, 1024, 768, 4096)
        assert time.perf_counter() - start < 0.5, fmt  # well under 100 ms here; generous for CI
    assert (tmp_path / "s.ppm").stat().st_size == len(b"P6\n1024 768\n255\n") + 1024 * 768 * 3


def test_write_errors_leave_no_temp(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        write_screendump(str(tmp_path / "x"), "bmp", b"\0" * 64, 4, 4, 16)
    with pytest.raises(OSError):
        write_screendump(str(tmp_path / "no" / "x"), "ppm", b"\0" * 64, 4, 4, 16)
    assert list(tmp_path.iterdir()) == []


def test_temp_file_is_unpredictable_and_never_follows_a_symlink(tmp_path: Path) -> None:
    """The temp name was `<path>.tmp<pid>` and opened without O_EXCL|O_NOFOLLOW: another user of
    the directory could plant a symlink there and have the VMM write through it."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "shot.ppm"
    for pid in range(max(os.getpid() - 50, 1), os.getpid() + 50):  # every name the old code used
        (tmp_path / f"shot.ppm.tmp{pid}").symlink_to(victim)
    write_screendump(str(target), "ppm", b"\0" * 64, 4, 4, 16)
    assert victim.read_bytes() == b"precious"
    assert target.read_bytes().startswith(b"P6\n4 4\n255\n")
    assert not target.is_symlink()
    leftovers = {p.name for p in tmp_path.iterdir()} - {"victim", "shot.ppm"}
    assert all(n.startswith("shot.ppm.tmp") for n in leftovers)  # only the planted links
