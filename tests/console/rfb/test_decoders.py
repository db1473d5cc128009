"""Decoders against hand-made payloads: correct pixels, and one sentence for malformed input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from vmgui.console.rfb import auth
from vmgui.console.rfb.decoders import (
    TIGHT_FILTER_GRADIENT,
    TIGHT_FILTER_PALETTE,
    DecodeError,
    TightDecoder,
    TightRect,
    ZlibStream,
    ZrleDecoder,
    cursor_argb,
    decode_raw,
    decode_zlib,
    gradient,
)


def sync_flush(c: zlib._Compress, data: bytes) -> bytes:
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def rgb(pixels: np.ndarray) -> bytes:
    """uint32 0x00RRGGBB -> Tight TPIXELs (R, G, B)."""
    p = pixels.reshape(-1)
    return np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=1).astype(np.uint8).tobytes()


def bgr(pixels: np.ndarray) -> bytes:
    """uint32 -> ZRLE CPIXELs (B, G, R)."""
    p = pixels.reshape(-1)
    return np.stack([p & 255, (p >> 8) & 255, (p >> 16) & 255], axis=1).astype(np.uint8).tobytes()


def one_sentence(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert text.endswith(".") and "\n" not in text and text[0].isupper(), text
    return text


RNG = np.random.default_rng(7)
IMG = RNG.integers(0, 1 << 24, size=(19, 37), dtype=np.uint32)


def test_raw_and_truncated_raw() -> None:
    assert (decode_raw(IMG.astype("<u4").tobytes(), 37, 19) == IMG).all()
    with pytest.raises(DecodeError) as exc:
        decode_raw(IMG.astype("<u4").tobytes()[:-1], 37, 19)
    assert "truncated" in one_sentence(exc)


def test_zlib_stream_persists_across_rectangles() -> None:
    c = zlib.compressobj()
    s = ZlibStream()
    for _ in range(3):
        out = decode_zlib(s, sync_flush(c, IMG.astype("<u4").tobytes()), 37, 19)
        assert (out == IMG).all()


def test_zlib_that_inflates_past_its_rectangle_is_refused() -> None:
    c = zlib.compressobj()
    data = sync_flush(c, IMG.astype("<u4").tobytes() + b"\0" * 4096)
    with pytest.raises(DecodeError) as exc:
        decode_zlib(ZlibStream(), data, 37, 19)
    assert "inflates past" in one_sentence(exc)


def test_zlib_short_and_corrupt() -> None:
    c = zlib.compressobj()
    with pytest.raises(DecodeError, match="truncated"):
        decode_zlib(ZlibStream(), sync_flush(c, b"\0" * 10), 37, 19)
    with pytest.raises(DecodeError) as exc:
        decode_zlib(ZlibStream(), b"not zlib at all", 37, 19)
    assert "corrupt" in one_sentence(exc)


def test_tight_fill_copy_palette_and_resets() -> None:
    t = TightDecoder()
    fill = t.decode(TightRect(0x80, fill=b"\x12\x34\x56"), 5, 3)
    assert fill.shape == (3, 5) and (fill == 0x123456).all()
    c = zlib.compressobj()
    copy = t.decode(
        TightRect(0x00, data=sync_flush(c, rgb(IMG)), compressed=True), 37, 19
    )
    assert (copy == IMG).all()
    # stream 0 reset: a fresh compressor on the server side as well
    c = zlib.compressobj()
    again = t.decode(TightRect(0x01, data=sync_flush(c, rgb(IMG)), compressed=True), 37, 19)
    assert (again == IMG).all()
    palette = np.array([0x0000FF, 0x00FF00, 0xFF0000], dtype=np.uint32)
    index = RNG.integers(0, 3, size=(19, 37), dtype=np.uint8)
    rect = TightRect(
        0x50 | 0x40, filter=TIGHT_FILTER_PALETTE, palette=rgb(palette),
        data=sync_flush(zlib.compressobj(), index.tobytes()), compressed=True,
    )  # fmt: skip
    assert (t.decode(rect, 37, 19) == palette[index]).all()


def test_tight_two_colour_palette_is_one_bit_per_pixel() -> None:
    palette = np.array([0x111111, 0xEEEEEE], dtype=np.uint32)
    bits = RNG.integers(0, 2, size=(4, 10), dtype=np.uint8)
    packed = np.packbits(bits, axis=1).tobytes()  # 2 bytes per row, MSB first
    rect = TightRect(0x40, filter=TIGHT_FILTER_PALETTE, palette=rgb(palette), data=packed)
    assert (TightDecoder().decode(rect, 10, 4) == palette[bits]).all()


def test_tight_bad_palette_index_is_refused() -> None:
    palette = np.array([1, 2, 3], dtype=np.uint32)
    data = bytes([0, 1, 2, 3]) * 4  # index 3 with a 3-colour palette
    rect = TightRect(0x40, filter=TIGHT_FILTER_PALETTE, palette=rgb(palette), data=data)
    with pytest.raises(DecodeError) as exc:
        TightDecoder().decode(rect, 4, 4)
    assert "palette" in one_sentence(exc)


def gradient_reference(values: np.ndarray) -> bytes:
    """Encode like a server: difference between each component and its prediction."""
    h, w = values.shape
    comp = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=2)
    comp = comp.astype(np.int32)
    out = np.zeros_like(comp)
    for y in range(h):
        for x in range(w):
            left = comp[y, x - 1] if x else 0
            up = comp[y - 1, x] if y else 0
            ul = comp[y - 1, x - 1] if x and y else 0
            pred = np.clip(left + up - ul, 0, 255)
            out[y, x] = (comp[y, x] - pred) & 255
    return out.astype(np.uint8).tobytes()


@pytest.mark.parametrize("w,h", [(1, 1), (1, 9), (9, 1), (37, 19), (19, 37)])
def test_tight_gradient_filter(w: int, h: int) -> None:
    img = RNG.integers(0, 1 << 24, size=(h, w), dtype=np.uint32)
    assert (gradient(gradient_reference(img), w, h) == img).all()
    rect = TightRect(
        0x40, filter=TIGHT_FILTER_GRADIENT,
        data=sync_flush(zlib.compressobj(), gradient_reference(img)), compressed=True,
    )  # fmt: skip
    if w * h * 3 >= 12:
        assert (TightDecoder().decode(rect, w, h) == img).all()


def test_tight_jpeg_through_the_injected_decoder_only() -> None:
    seen = []

    def fake_jpeg(data: bytes) -> tuple[int, int, bytes]:
        seen.append(data)
        return 2, 2, IMG[:2, :2].astype("<u4").tobytes()

    assert (TightDecoder(fake_jpeg).decode(TightRect(0x90, jpeg=b"JP"), 2, 2) == IMG[:2, :2]).all()
    assert seen == [b"JP"]
    with pytest.raises(DecodeError, match="JPEG"):
        TightDecoder().decode(TightRect(0x90, jpeg=b"JP"), 2, 2)
    with pytest.raises(DecodeError, match="wrong size"):
        TightDecoder(fake_jpeg).decode(TightRect(0x90, jpeg=b"JP"), 3, 2)


def zrle_payload(tiles: bytes) -> bytes:
    return sync_flush(zlib.compressobj(), tiles)


def test_zrle_tile_kinds() -> None:
    w, h = 70, 66  # four tiles: 64x64, 6x64, 64x2, 6x2
    img = np.zeros((h, w), dtype=np.uint32)
    stream = bytearray()
    # tile 1: raw
    t1 = RNG.integers(0, 1 << 24, size=(64, 64), dtype=np.uint32)
    img[:64, :64] = t1
    stream += b"\x00" + bgr(t1)
    # tile 2: solid
    img[:64, 64:] = 0xABCDEF
    stream += b"\x01" + bgr(np.array([0xABCDEF], dtype=np.uint32))
    # tile 3: packed palette of 3 colours (2 bits per index)
    pal = np.array([0x010203, 0x040506, 0x070809], dtype=np.uint32)
    idx = RNG.integers(0, 3, size=(2, 64), dtype=np.uint8)
    img[64:, :64] = pal[idx]
    bits = np.unpackbits(idx[..., None], axis=2)[..., 6:].reshape(2, -1)
    stream += b"\x03" + bgr(pal) + np.packbits(bits, axis=1).tobytes()
    # tile 4: plain RLE, one run of 300 (> 255 continues) is too long; use 5 + 7
    img[64:, 64:] = np.array([0x00AA00] * 5 + [0x0000BB] * 7, dtype=np.uint32).reshape(2, 6)
    stream += b"\x80" + bgr(np.array([0x00AA00], dtype=np.uint32)) + bytes([4])
    stream += bgr(np.array([0x0000BB], dtype=np.uint32)) + bytes([6])
    assert (ZrleDecoder().decode(zrle_payload(bytes(stream)), w, h) == img).all()


def test_zrle_palette_rle_and_long_runs() -> None:
    pal = np.array([0x123456, 0x654321], dtype=np.uint32)
    # 64x64 = 4096 pixels: index 0 run of 4000 (255 x 15 + 175 + 1), then 96 single index-1
    run = 4000 - 1
    length = bytes([255] * (run // 255)) + bytes([run % 255])
    tile = bytes([130]) + bgr(pal) + bytes([0x80]) + length + bytes([1]) * 96
    out = ZrleDecoder().decode(zrle_payload(tile), 64, 64).reshape(-1)
    assert (out[:4000] == 0x123456).all() and (out[4000:] == 0x654321).all()


@pytest.mark.parametrize(
    "tile,words",
    [
        (b"\x00" + b"\x01" * 10, "truncated"),  # raw tile cut short
        (bytes([130]) + b"\0" * 6 + bytes([5]), "palette"),  # index beyond a 2-colour palette
        (b"\x80\x01\x02\x03" + bytes([255] * 20) + b"\x00", "longer than its tile"),
        (bytes([100]), "unknown type"),
        (b"\x80\x01\x02", "truncated"),
    ],
)
def test_zrle_malformed(tile: bytes, words: str) -> None:
    with pytest.raises(DecodeError) as exc:
        ZrleDecoder().decode(zrle_payload(tile), 64, 64)
    assert words in one_sentence(exc)


def test_zrle_inflating_far_past_its_worst_case_is_refused() -> None:
    with pytest.raises(DecodeError, match="inflates past"):
        ZrleDecoder().decode(zrle_payload(b"\x01\0\0\0" * 100000), 8, 8)


def test_cursor_mask_becomes_alpha() -> None:
    pixels = np.array([[0x112233, 0x445566]], dtype="<u4").tobytes()
    out = np.frombuffer(cursor_argb(pixels, bytes([0b10000000]), 2, 1), dtype="<u4")
    assert list(out) == [0xFF112233, 0]


def test_vnc_auth_matches_the_known_answer() -> None:
    # Reference: DES-ECB of a zero challenge under the bit-reversed key of "password".
    from Crypto.Cipher import DES

    key = bytes(int(f"{b:08b}"[::-1], 2) for b in b"password")
    assert auth.vnc_key("password") == key == bytes.fromhex("0e86ceceeef64e26")
    assert auth.vnc_response(bytes(16), "password") == DES.new(key, DES.MODE_ECB).encrypt(bytes(16))
    assert auth.vnc_key("pw") == auth.vnc_key("pw\0\0\0\0\0\0") and len(auth.vnc_key("a" * 20)) == 8


def test_tight_gradient_smooth_picture_and_hard_edges() -> None:
    """Smooth rows take the running-sum path, white-on-black edges the clamped one."""
    y, x = np.mgrid[0:40, 0:300]
    smooth = ((x % 256) << 16 | (y * 3) << 8 | ((x + y) // 2 % 256)).astype(np.uint32)
    edges = np.zeros((40, 300), dtype=np.uint32)
    edges[5:20, 10:200] = 0xFFFFFF
    edges[::7, ::13] = 0x80FF00
    for img in (smooth, edges):
        assert (gradient(gradient_reference(img), 300, 40) == img).all()
