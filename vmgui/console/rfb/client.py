"""The RFB client state machine: handshake, then framebuffer updates into a local image.

Owns the framebuffer (`fb`, a bytearray of x8r8g8b8 pixels, `pixels` its (h, w) uint32 view)
and tells a `ClientHandler` about damage, size and state changes (cursor, LEDs, pointer mode,
resize support). Reads are exact and bounded (wire.py's limits); each rectangle is checked
against the framebuffer before its payload is decoded (decoders.py) and copied in, so nothing
the server says can write outside the image. Server faults raise `ProtocolError` (one
sentence); the owner closes the connection with it.

Encodings (RFB 3.3/3.7/3.8): Raw, Zlib, Tight (lossless filters; JPEG only with a decoder
hook), ZRLE; pseudo-encodings DesktopSize, ExtendedDesktopSize, LastRect, Cursor, QEMU pointer
type change, QEMU extended key events and QEMU LED state. QEMU's server uses the first encoding
of our list it knows, so the order is the preference: Raw first on a local socket (memcpy beats
any inflate), Tight first over a network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np

from vmgui.console.rfb import auth, wire
from vmgui.console.rfb.decoders import (
    TIGHT_FILL,
    TIGHT_FILTER_COPY,
    TIGHT_FILTER_GRADIENT,
    TIGHT_FILTER_PALETTE,
    TIGHT_JPEG,
    TIGHT_MIN_TO_COMPRESS,
    DecodeError,
    JpegDecoder,
    Pixels,
    TightDecoder,
    TightRect,
    ZlibStream,
    ZrleDecoder,
    cursor_argb,
    decode_raw,
    decode_zlib,
    tight_data_size,
    zlib_input_limit,
    zrle_inflated_limit,
)
from vmgui.console.rfb.wire import ProtocolError
from vmgui.console.source import ConsoleError, CursorImage, Rect

log = logging.getLogger(__name__)

#: Rectangles at least this big are decoded on a worker thread (inflate + numpy release the
#: GIL), so the event loop keeps painting. Measured here: a thread hop costs ~40 us, a 128x128
#: Tight rectangle ~170 us and a 256x256 one ~770 us to decode, so nothing decoded inline
#: holds the loop much longer than the hop would cost.
EXECUTOR_MIN_PIXELS = 128 * 128
#: Raw rectangles are read and copied in bands of about this many bytes.
RAW_BAND_BYTES = 256 * 1024
#: More damage rectangles than this in one update are reported as their bounding box.
MAX_DAMAGE_RECTS = 64
#: zlib effort asked of the server (0-9, the CompressLevel pseudo-encoding).
DEFAULT_COMPRESS_LEVEL = 1
DESKTOP_SIZE_CLIENT_REQUEST = 1
_RESIZE_STATUS = {
    1: "the VNC server does not allow changing the guest's resolution",
    2: "the guest has no resources for that resolution",
    3: "the guest does not accept that screen layout",
}

AskPassword = Callable[[], Awaitable[str | None]]


class PasswordRequired(ConsoleError):
    """The server wants VNC authentication and no password is known."""


class AuthenticationFailed(ConsoleError):
    """The server rejected the password."""


class ClientHandler(Protocol):
    def on_resize(self) -> None: ...

    def on_damage(self, rects: list[Rect]) -> None: ...

    def on_state(self) -> None: ...


def default_encodings(local: bool) -> list[int]:
    if local:
        return [wire.ENC_RAW, wire.ENC_TIGHT, wire.ENC_ZRLE, wire.ENC_ZLIB]
    return [wire.ENC_TIGHT, wire.ENC_ZRLE, wire.ENC_ZLIB, wire.ENC_RAW]


def parse_encodings(text: str) -> list[int]:
    """`"tight,raw"` -> encoding numbers; ValueError with a sentence for an unknown name."""
    out = []
    for name in (n.strip().lower() for n in text.split(",")):
        if name not in wire.ENCODING_NAMES:
            known = ", ".join(wire.ENCODING_NAMES)
            raise ValueError(f"Unknown encoding {name!r} (known: {known}).")
        out.append(wire.ENCODING_NAMES[name])
    return out


class RfbClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: ClientHandler,
        *,
        encodings: list[int],
        password: str | None = None,
        ask_password: AskPassword | None = None,
        jpeg_decoder: JpegDecoder | None = None,
        jpeg_quality: int | None = None,
        compress_level: int = DEFAULT_COMPRESS_LEVEL,
    ) -> None:
        self._r = wire.Reader(reader)
        self._w = writer
        self._handler = handler
        self._password = password
        self._ask_password = ask_password
        wanted = list(encodings)
        # Servers default to their slowest zlib level (QEMU: 9); a low level costs the server
        # far less CPU per frame for a somewhat larger stream.
        wanted.append(wire.ENC_COMPRESS_LEVEL_0 + max(0, min(9, compress_level)))
        if jpeg_decoder is not None and jpeg_quality is not None:
            wanted.append(wire.ENC_JPEG_QUALITY_0 + max(0, min(9, jpeg_quality)))
        self.encodings = wanted + list(wire.PSEUDO_ENCODINGS)
        self._zlib = ZlibStream()
        self._tight = TightDecoder(jpeg_decoder)
        self._zrle = ZrleDecoder()
        self.version = (0, 0)
        self.name = ""
        self.width = 0
        self.height = 0
        self.fb = bytearray()
        self.pixels: Pixels = np.zeros((0, 0), dtype=np.uint32)
        self.ext_keys = False
        self.can_resize = False
        self.absolute_pointer = False
        self.leds: int | None = None
        self.cursor: CursorImage | None = None
        self.resize_problem = ""
        self.updates = 0  # completed FramebufferUpdate messages
        self.first_frame = asyncio.Event()
        self._uncovered: np.ndarray | None = None  # pixels not yet received since a full request
        self._screen_id = 0
        self._last_pointer = (0, 0)
        self._update_waiters: list[asyncio.Future[None]] = []

    # --- handshake ---------------------------------------------------------------------------

    async def handshake(self) -> None:
        r = self._r
        self.version = wire.choose_version(wire.parse_version(await r.exactly(12)))
        self._w.write(wire.version_bytes(self.version))
        if self.version == (3, 3):
            types = [await r.u32()]
            if types[0] == wire.SECURITY_INVALID:
                raise ConsoleError(await self._refusal())
        else:
            count = await r.u8()
            if count == 0:
                raise ConsoleError(await self._refusal())
            types = list(await r.exactly(count))
        if wire.SECURITY_NONE in types:
            chosen = wire.SECURITY_NONE
        elif wire.SECURITY_VNC in types:
            chosen = wire.SECURITY_VNC
        else:
            raise ConsoleError(
                "The VNC server asks for an authentication method vmgui does not support "
                f"(types {', '.join(map(str, types))})."
            )
        if self.version != (3, 3):
            self._w.write(bytes([chosen]))
        if chosen == wire.SECURITY_VNC:
            challenge = await r.exactly(auth.CHALLENGE_BYTES)
            password = self._password
            if password is None and self._ask_password is not None:
                password = await self._ask_password()
            if password is None:
                raise PasswordRequired("The VNC server needs a password.")
            self._w.write(auth.vnc_response(challenge, password))
        checked = chosen == wire.SECURITY_VNC or self.version == (3, 8)
        if checked and await r.u32() != 0:
            if self.version == (3, 8):
                await r.string(wire.MAX_REASON_BYTES, "reason")
            if chosen == wire.SECURITY_VNC:
                raise AuthenticationFailed("The VNC server did not accept the password.")
            raise ConsoleError("The VNC server refused the connection.")
        self._w.write(b"\x01")  # ClientInit: shared, other viewers stay connected
        width, height, _pf, name_len = wire.SERVER_INIT.unpack(await r.exactly(24))
        wire.check_framebuffer_size(width, height)
        if name_len > wire.MAX_NAME_BYTES:
            raise ProtocolError("The VNC server sent an overlong desktop name.")
        self.name = (await r.exactly(name_len)).decode("utf-8", "replace")
        self._allocate(width, height)
        self._w.write(wire.set_pixel_format() + wire.set_encodings(self.encodings))
        self._request(incremental=False)
        await self._w.drain()

    async def _refusal(self) -> str:
        reason = (await self._r.string(wire.MAX_REASON_BYTES, "reason")).strip()
        reason = reason.splitlines()[0] if reason else ""
        return f"The VNC server refused the connection: {reason}." if reason else (
            "The VNC server refused the connection."
        )

    # --- message loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Process server messages until the connection fails (raises) or is cancelled."""
        r = self._r
        while True:
            kind = await r.u8()
            if kind == wire.SERVER_FRAMEBUFFER_UPDATE:
                await self._framebuffer_update()
            elif kind == wire.SERVER_SET_COLOUR_MAP:
                await r.exactly(3)
                count = await r.u16()
                if count > wire.MAX_COLOUR_MAP_ENTRIES:
                    raise ProtocolError("The VNC server sent an oversized colour map.")
                await r.skip(count * 6)
            elif kind == wire.SERVER_BELL:
                pass
            elif kind == wire.SERVER_CUT_TEXT:
                await r.exactly(3)
                length = await r.u32()
                if length > wire.MAX_CUT_TEXT_BYTES:
                    raise ProtocolError("The VNC server sent an oversized clipboard text.")
                await r.skip(length)
            else:
                raise ProtocolError(f"The VNC server sent an unknown message (type {kind}).")

    async def _framebuffer_update(self) -> None:
        r = self._r
        await r.exactly(1)
        count = await r.u16()
        # Steady state: ask for the next update now, so the server prepares and sends it while
        # this one is decoded (the server coalesces; it never sends unasked).
        asked = self.first_frame.is_set()
        if asked:
            self._request(incremental=True)
        damage: list[Rect] = []
        resized = False
        for _ in range(count):
            x, y, w, h, enc = wire.RECT_HEADER.unpack(await r.exactly(12))
            if enc == wire.ENC_LAST_RECT:
                break
            if enc in (wire.ENC_RAW, wire.ENC_ZLIB, wire.ENC_TIGHT, wire.ENC_ZRLE):
                if x + w > self.width or y + h > self.height:
                    raise ProtocolError(
                        f"The VNC server sent a rectangle {w}x{h}+{x}+{y} outside its "
                        f"{self.width}x{self.height} screen."
                    )
                if enc == wire.ENC_RAW:
                    await self._read_raw(x, y, w, h)
                else:
                    pixels = await self._decode(enc, w, h)
                    if pixels is None:
                        continue
                    self.pixels[y : y + h, x : x + w] = pixels
                if self._uncovered is not None:
                    self._uncovered[y : y + h, x : x + w] = False
                damage.append(Rect(x, y, w, h))
            elif enc == wire.ENC_DESKTOP_SIZE:
                self._resize(w, h)
                damage, resized = [], True
            elif enc == wire.ENC_EXTENDED_DESKTOP_SIZE:
                if await self._extended_desktop_size(x, y, w, h):
                    damage, resized = [], True
            elif enc == wire.ENC_CURSOR:
                await self._read_cursor(x, y, w, h)
            elif enc == wire.ENC_POINTER_TYPE_CHANGE:
                self.absolute_pointer = x != 0
                self._handler.on_state()
            elif enc == wire.ENC_QEMU_EXTENDED_KEY_EVENT:
                self.ext_keys = True
            elif enc == wire.ENC_QEMU_LED_STATE:
                self.leds = await r.u8()
                self._handler.on_state()
            else:
                raise ProtocolError(
                    f"The VNC server sent a rectangle in an encoding vmgui did not ask for ({enc})."
                )
        self.updates += 1
        if damage:
            if len(damage) > MAX_DAMAGE_RECTS:
                damage = [_bounding(damage)]
            self._handler.on_damage(damage)
        if self._uncovered is not None and not self._uncovered.any():
            self._uncovered = None
            self.first_frame.set()
        waiters, self._update_waiters = self._update_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        if resized:
            self._request(incremental=False)
        elif not asked:
            self._request(incremental=True)

    async def _decode(self, enc: int, w: int, h: int) -> Pixels | None:
        r = self._r
        if enc == wire.ENC_TIGHT:
            rect = await self._read_tight(w, h)
            job: Callable[[], Pixels] = lambda: self._tight.decode(rect, w, h)  # noqa: E731
        else:
            length = await r.u32()
            raw_size = w * h * 4 if enc == wire.ENC_ZLIB else zrle_inflated_limit(w, h)
            if length > zlib_input_limit(raw_size):
                raise ProtocolError(f"The VNC server sent an oversized rectangle ({length} bytes).")
            data = await r.exactly(length)
            if enc == wire.ENC_ZLIB:
                job = lambda: decode_zlib(self._zlib, data, w, h)  # noqa: E731
            else:
                job = lambda: self._zrle.decode(data, w, h)  # noqa: E731
        if not (w and h):
            return None
        if w * h >= EXECUTOR_MIN_PIXELS:
            return await asyncio.get_running_loop().run_in_executor(None, job)
        return job()

    async def _read_raw(self, x: int, y: int, w: int, h: int) -> None:
        """Raw pixels straight into the framebuffer, a band of rows at a time, letting the loop
        run between bands (a whole 1024x768 frame at once held it for tens of ms here)."""
        if not (w and h):
            return
        rows = max(1, RAW_BAND_BYTES // (w * 4))
        for top in range(y, y + h, rows):
            n = min(rows, y + h - top)
            data = await self._r.exactly(w * n * 4)
            self.pixels[top : top + n, x : x + w] = decode_raw(data, w, n)
            if n < h:
                await asyncio.sleep(0)

    async def _read_tight(self, w: int, h: int) -> TightRect:
        r = self._r
        control = await r.u8()
        method = control >> 4
        if method == TIGHT_FILL:
            return TightRect(control, fill=await r.exactly(3))
        if method == TIGHT_JPEG:
            length = await r.compact_length()
            return TightRect(control, jpeg=await r.exactly(length))
        if method > TIGHT_JPEG:
            raise DecodeError("The VNC server sent a Tight rectangle of an unknown kind.")
        filter_id = await r.u8() if control & 0x40 else TIGHT_FILTER_COPY
        palette = b""
        if filter_id == TIGHT_FILTER_PALETTE:
            palette = await r.exactly(((await r.u8()) + 1) * 3)
        elif filter_id not in (TIGHT_FILTER_COPY, TIGHT_FILTER_GRADIENT):
            raise DecodeError("The VNC server sent a Tight rectangle with an unknown filter.")
        size = tight_data_size(filter_id, len(palette) // 3, w, h)
        if size < TIGHT_MIN_TO_COMPRESS:
            return TightRect(control, filter=filter_id, palette=palette, data=await r.exactly(size))
        length = await r.compact_length()
        if length > zlib_input_limit(size):
            raise ProtocolError(f"The VNC server sent an oversized rectangle ({length} bytes).")
        data = await r.exactly(length)
        return TightRect(control, filter=filter_id, palette=palette, data=data, compressed=True)

    async def _extended_desktop_size(self, reason: int, status: int, w: int, h: int) -> bool:
        r = self._r
        screens = await r.u8()
        await r.exactly(3)
        if screens > wire.MAX_SCREENS:
            raise ProtocolError(f"The VNC server described {screens} screens, too many.")
        layout = await r.exactly(16 * screens)
        if screens:
            self._screen_id = int.from_bytes(layout[:4], "big")
        self.can_resize = True
        if reason == DESKTOP_SIZE_CLIENT_REQUEST and status != 0:
            why = _RESIZE_STATUS.get(status, "the guest did not accept the new resolution")
            self.resize_problem = why[0].upper() + why[1:] + "."
            self._handler.on_state()
            return False
        self.resize_problem = ""
        changed = (w, h) != (self.width, self.height)
        if changed:
            self._resize(w, h)
        self._handler.on_state()
        return changed

    async def _read_cursor(self, hot_x: int, hot_y: int, w: int, h: int) -> None:
        if w > wire.MAX_CURSOR_DIMENSION or h > wire.MAX_CURSOR_DIMENSION:
            raise ProtocolError(f"The VNC server sent an impossible {w}x{h} pointer shape.")
        pixels = await self._r.exactly(w * h * 4)
        mask = await self._r.exactly(((w + 7) // 8) * h)
        argb = cursor_argb(pixels, mask, w, h) if w and h else b""
        self.cursor = CursorImage(
            w, h, min(hot_x, max(0, w - 1)), min(hot_y, max(0, h - 1)), argb
        )
        self._handler.on_state()

    def _allocate(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.fb = bytearray(width * height * 4)
        self.pixels = np.frombuffer(self.fb, dtype=np.uint32).reshape(height, width)

    def _resize(self, width: int, height: int) -> None:
        wire.check_framebuffer_size(width, height)
        self._allocate(width, height)
        if self._uncovered is not None or not self.first_frame.is_set():
            self._uncovered = np.ones((height, width), dtype=bool)
        self._handler.on_resize()

    def _request(self, incremental: bool) -> None:
        if not incremental and not self.first_frame.is_set():
            self._uncovered = np.ones((self.height, self.width), dtype=bool)
        self._send(wire.update_request(incremental, 0, 0, self.width, self.height))

    # --- input -----------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not self._w.is_closing():
            self._w.write(data)

    def send_key(self, scancode: int, keysym: int, down: bool) -> None:
        if self.ext_keys and scancode:
            self._send(wire.qemu_key_event(scancode, keysym, down))
        elif keysym:
            self._send(wire.key_event(keysym, down))

    def send_pointer(self, x: int, y: int, buttons: int) -> None:
        """Absolute framebuffer position; in relative mode QEMU takes deltas around 0x7FFF."""
        if self.absolute_pointer:
            x = max(0, min(self.width - 1, x))
            y = max(0, min(self.height - 1, y))
            self._send(wire.pointer_event(x, y, buttons))
            return
        last_x, last_y = self._last_pointer
        self._last_pointer = (x, y)
        dx = max(-0x7FFF, min(0x7FFF, x - last_x))
        dy = max(-0x7FFF, min(0x7FFF, y - last_y))
        self._send(wire.pointer_event(0x7FFF + dx, 0x7FFF + dy, buttons))

    def request_size(self, width: int, height: int) -> None:
        if not self.can_resize:
            self.resize_problem = "The VNC server cannot change the guest's resolution."
            self._handler.on_state()
            return
        try:
            wire.check_framebuffer_size(width, height)
        except ProtocolError:
            return
        self._send(wire.set_desktop_size(width, height, self._screen_id))

    async def next_update(self) -> None:
        """Wait for the next complete FramebufferUpdate (tests, tools)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._update_waiters.append(fut)
        await fut


def _bounding(rects: list[Rect]) -> Rect:
    x0 = min(r.x for r in rects)
    y0 = min(r.y for r in rects)
    x1 = max(r.x + r.w for r in rects)
    y1 = max(r.y + r.h for r in rects)
    return Rect(x0, y0, x1 - x0, y1 - y0)
