"""The RFB client against a scripted server: handshakes, and hostile or broken streams.

Whatever the server does, the outcome is one sentence (ConsoleError from start(), or exactly
one listener.closed(reason) afterwards), nothing raised into the event loop, and no pixel
changed outside the rectangles that were valid.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from tests.console.rfb.fake_server import FakeServer, Recorder, raw_rect, rect, update
from vmgui.console.rfb import PasswordRequired, RfbSource, wire
from vmgui.console.rfb.auth import vnc_response
from vmgui.console.source import ConsoleError

W, H = 64, 48
FIRST = np.arange(W * H, dtype=np.uint32).reshape(H, W) * 977 & 0xFFFFFF


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    """Run on a fresh loop and fail on anything that reached the loop's exception handler."""
    problems: list[dict[str, object]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: problems.append(ctx))
        await coro_fn()

    asyncio.run(main())
    assert problems == []


async def opened(server: FakeServer, recorder: Recorder, **kw: object) -> RfbSource:
    source = RfbSource(server.endpoint, **kw)  # type: ignore[arg-type]
    source.set_listener(recorder)
    start = asyncio.ensure_future(source.start())
    await server.handshake(W, H)
    server.send(update(raw_rect(0, 0, FIRST)))
    await asyncio.wait_for(start, 5)
    return source


def sentence(text: str) -> None:
    assert text and text[0].isupper() and text.endswith(".") and "\n" not in text, text


def test_first_frame_then_updates_and_damage() -> None:
    async def body() -> None:
        server, rec = FakeServer(), Recorder()
        source = await opened(server, rec)
        assert (source.width, source.height, source.stride) == (W, H, W * 4)
        assert source.buffer is not None
        got = np.frombuffer(source.buffer, dtype="<u4").reshape(H, W)
        assert (got == FIRST).all()
        patch = np.full((4, 5), 0xABCDEF, dtype=np.uint32)
        server.send(update(raw_rect(3, 2, patch), rect(0, 0, 0, 0, wire.ENC_LAST_RECT))[:2]
                    + b"\xff\xff" + update(raw_rect(3, 2, patch),
                                           rect(0, 0, 0, 0, wire.ENC_LAST_RECT))[4:])
        client = source.client
        assert client is not None
        await asyncio.wait_for(client.next_update(), 5)
        assert rec.damage[-1].w == 5 and (got[2:6, 3:8] == 0xABCDEF).all()
        # the client asked for the pixel format and encodings we decode, local: Raw first
        sent = bytes(server.received)
        assert sent.startswith(wire.set_pixel_format())
        assert sent[20:28] == struct.pack(">BxHi", 2, len(client.encodings), wire.ENC_RAW)
        await source.close()
        assert rec.closed_with == [""]
        await server.close()

    run(body)


@pytest.mark.parametrize("version", [b"RFB 003.003\n", b"RFB 003.007\n", b"RFB 003.889\n"])
def test_older_and_odd_versions(version: bytes) -> None:
    async def body() -> None:
        server, rec = FakeServer(), Recorder()
        source = RfbSource(server.endpoint)
        source.set_listener(rec)
        start = asyncio.ensure_future(source.start())
        await server.handshake(W, H, version=version)
        server.send(update(raw_rect(0, 0, FIRST)))
        await asyncio.wait_for(start, 5)
        assert source.client is not None
        assert source.client.version == {b"3": (3, 3), b"7": (3, 7)}.get(version[10:11], (3, 8))
        await source.close()
        await server.close()

    run(body)


async def refused_start(script: Callable[[FakeServer], Awaitable[None]]) -> str:
    server = FakeServer()
    source = RfbSource(server.endpoint)
    start = asyncio.ensure_future(source.start())
    await server.open()
    await script(server)
    with pytest.raises(ConsoleError) as exc:
        await asyncio.wait_for(start, 5)
    await server.close()
    sentence(str(exc.value))
    return str(exc.value)


def test_handshake_failures_are_one_sentence() -> None:
    async def not_vnc(s: FakeServer) -> None:
        s.send(b"SSH-2.0-OpenSSH_9.2\r\n")

    async def refused(s: FakeServer) -> None:
        s.send(b"RFB 003.008\n")
        await s.reader.readexactly(12)
        s.send(b"\0" + struct.pack(">I", 14) + b"Too many users")

    async def unknown_security(s: FakeServer) -> None:
        s.send(b"RFB 003.008\n")
        await s.reader.readexactly(12)
        s.send(b"\x02\x12\x13")

    async def wants_password(s: FakeServer) -> None:
        s.send(b"RFB 003.008\n")
        await s.reader.readexactly(12)
        s.send(b"\x01\x02")
        await s.reader.readexactly(1)
        s.send(bytes(16))

    async def absurd_size(s: FakeServer) -> None:
        s.send(b"RFB 003.008\n")
        await s.reader.readexactly(12)
        s.send(b"\x01\x01")
        await s.reader.readexactly(1)
        s.send(b"\0\0\0\0")
        await s.reader.readexactly(1)
        s.send(struct.pack(">HH", 65535, 65535) + wire.CLIENT_PIXEL_FORMAT.pack() + bytes(4))

    async def hangs_up(s: FakeServer) -> None:
        s.send(b"RFB 003.008\n")
        s.writer.close()

    async def body() -> None:
        assert "not a VNC server" in await refused_start(not_vnc)
        assert "Too many users" in await refused_start(refused)
        assert "authentication method" in await refused_start(unknown_security)
        assert "needs a password" in await refused_start(wants_password)
        assert "impossible screen size" in await refused_start(absurd_size)
        assert "closed the connection" in await refused_start(hangs_up)

    run(body)


def test_missing_password_is_its_own_error_type() -> None:
    async def body() -> None:
        server = FakeServer()
        source = RfbSource(server.endpoint)
        start = asyncio.ensure_future(source.start())
        await server.open()
        server.send(b"RFB 003.008\n")
        await server.reader.readexactly(12)
        server.send(b"\x01\x02")
        await server.reader.readexactly(1)
        server.send(bytes(16))
        with pytest.raises(PasswordRequired):
            await asyncio.wait_for(start, 5)
        await server.close()

    run(body)


def _tight_palette_beyond() -> bytes:
    data = bytes([0, 1, 2, 7] * 4)  # index 7 with a 3-colour palette, 16 bytes: compressed
    comp = zlib.compressobj()
    z = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    return rect(0, 0, 4, 4, wire.ENC_TIGHT, b"\x40\x01\x02" + bytes(9) + bytes([len(z)]) + z)


def _zlib_past_rect() -> bytes:
    comp = zlib.compressobj()
    z = comp.compress(bytes(4 * 4 * 4 * 50)) + comp.flush(zlib.Z_SYNC_FLUSH)
    return rect(0, 0, 4, 4, wire.ENC_ZLIB, struct.pack(">I", len(z)) + z)


HOSTILE = {
    "outside": (update(raw_rect(60, 0, np.zeros((2, 10), np.uint32))), "outside"),
    "overflowing": (update(rect(65535, 65535, 65535, 65535, wire.ENC_RAW)), "outside"),
    "truncated": (update(rect(0, 0, 10, 10, wire.ENC_RAW, bytes(100))), "closed the connection"),
    "zlib past": (update(_zlib_past_rect()), "inflates past"),
    "zlib huge length": (update(rect(0, 0, 4, 4, wire.ENC_ZLIB, b"\xff\xff\xff\xff")), "oversized"),
    "absurd desktop": (update(rect(0, 0, 65535, 65535, wire.ENC_DESKTOP_SIZE)), "impossible"),
    "bad palette": (update(_tight_palette_beyond()), "palette"),
    "tight kind": (update(rect(0, 0, 4, 4, wire.ENC_TIGHT, b"\xb0")), "unknown kind"),
    "huge cursor": (update(rect(0, 0, 5000, 5000, wire.ENC_CURSOR)), "pointer shape"),
    "copyrect": (update(rect(0, 0, 4, 4, wire.ENC_COPYRECT, bytes(4))), "did not ask for"),
    "screens": (update(rect(0, 0, 64, 48, wire.ENC_EXTENDED_DESKTOP_SIZE, b"\xff\0\0\0")),
                "too many"),
    "unknown message": (b"\x77", "unknown message"),
    "huge clipboard": (b"\x03\0\0\0\xff\xff\xff\xff", "oversized clipboard"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_stream_closes_with_one_sentence(name: str) -> None:
    payload, words = HOSTILE[name]

    async def body() -> None:
        server, rec = FakeServer(), Recorder()
        source = await opened(server, rec)
        assert source.buffer is not None
        before = bytes(source.buffer)
        server.send(payload)
        if name == "truncated":
            server.writer.close()
        await asyncio.wait_for(rec.closed_event.wait(), 5)
        assert len(rec.closed_with) == 1
        sentence(rec.closed_with[0])
        assert words in rec.closed_with[0]
        if name != "absurd desktop":
            assert bytes(source.buffer) == before  # nothing written, inside or outside
        source.send_key(0x1C, 0xFF0D, True)  # harmless after the end
        await source.close()
        assert len(rec.closed_with) == 1
        await server.close()

    run(body)


def test_clipboard_bell_and_pseudo_encodings_are_handled() -> None:
    async def body() -> None:
        server, rec = FakeServer(), Recorder()
        source = await opened(server, rec)
        client = source.client
        assert client is not None
        cursor = np.full((2, 3), 0x00FF00, dtype="<u4").tobytes() + b"\xc0\x40"
        layout = b"\x01\0\0\0" + struct.pack(">IHHHHI", 7, 0, 0, 32, 16, 0)
        server.send(
            b"\x03\0\0\0\0\0\0\x05hello" + b"\x02"
            + update(
                rect(1, 1, 3, 2, wire.ENC_CURSOR, cursor),
                rect(1, 0, 0, 0, wire.ENC_POINTER_TYPE_CHANGE),
                rect(0, 0, 1, 1, wire.ENC_QEMU_LED_STATE, b"\x04"),
                rect(0, 0, 0, 0, wire.ENC_QEMU_EXTENDED_KEY_EVENT),
                rect(0, 0, 32, 16, wire.ENC_EXTENDED_DESKTOP_SIZE, layout),
                raw_rect(0, 0, np.full((16, 32), 0x010203, np.uint32)),
            )
        )  # fmt: skip
        await asyncio.wait_for(client.next_update(), 5)
        assert rec.sizes == [(32, 16)] and (source.width, source.height) == (32, 16)
        assert source.absolute_pointer and source.can_resize and source.leds == 4
        assert source.cursor is not None and (source.cursor.hot_x, source.cursor.hot_y) == (1, 1)
        argb = np.frombuffer(source.cursor.argb, dtype="<u4").reshape(2, 3)
        assert list(argb[0]) == [0xFF00FF00, 0xFF00FF00, 0] and list(argb[1]) == [0, 0xFF00FF00, 0]
        assert source.buffer is not None and len(source.buffer) == 32 * 16 * 4
        mark = len(server.received)
        source.send_key(0xC8, 0xFF52, True)  # Up: E0 48 in QEMU's numbering
        source.request_size(40, 30)
        source.send_pointer(5, 6, 1)
        await asyncio.sleep(0.1)
        sent = bytes(server.received[mark:])
        assert struct.pack(">BBHII", 255, 0, 1, 0xFF52, 0xC8) in sent
        assert struct.pack(">BxHHBx", 251, 40, 30, 1) + struct.pack(">I", 7) in sent
        assert struct.pack(">BBHH", 5, 1, 5, 6) in sent
        # a refused resize is a sentence on the source, not an error
        server.send(update(rect(1, 3, 32, 16, wire.ENC_EXTENDED_DESKTOP_SIZE, layout)))
        await asyncio.wait_for(client.next_update(), 5)
        assert "screen layout" in source.resize_problem and rec.closed_with == []
        await source.close()
        await server.close()

    run(body)


def test_handshake_time_limit_does_not_count_the_password_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vmgui.console.rfb import source as source_module

    monkeypatch.setattr(source_module, "HANDSHAKE_TIMEOUT_S", 0.3)

    async def body() -> None:
        silent = FakeServer()
        await silent.open()
        with pytest.raises(ConsoleError, match="did not answer in time"):
            await RfbSource(silent.endpoint).start()
        await silent.close()

        async def slow_person() -> str:
            await asyncio.sleep(1.0)  # longer than the limit
            return "pw"

        server = FakeServer()
        source = RfbSource(server.endpoint, ask_password=slow_person)
        start = asyncio.ensure_future(source.start())
        await server.open()
        server.send(b"RFB 003.008\n")
        await server.reader.readexactly(12)
        server.send(b"\x01\x02")
        await server.reader.readexactly(1)
        server.send(bytes(16))
        answer = await asyncio.wait_for(server.reader.readexactly(16), 5)
        assert answer == vnc_response(bytes(16), "pw")
        server.send(b"\0\0\0\0")
        await server.reader.readexactly(1)
        server.send(struct.pack(">HH", W, H) + wire.CLIENT_PIXEL_FORMAT.pack() + bytes(4))
        server.send(update(raw_rect(0, 0, FIRST)))
        await asyncio.wait_for(start, 5)
        await source.close()
        await server.close()

    run(body)
