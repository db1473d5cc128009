"""RFB (VNC) wire format: numbers, limits, and builders/parsers of fixed-size messages.

Everything the server says is untrusted: sizes are checked against the named limits below
before anything is allocated, and a violation raises `ProtocolError` with one sentence that the
client turns into a closed connection. Only the pixel format we ask for is supported
(`CLIENT_PIXEL_FORMAT`: 32-bit x8r8g8b8 little-endian, `QImage.Format_RGB32`'s layout), so the
decoders never convert between formats.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

# --- limits (server-supplied numbers above these close the connection) ----------------------
MAX_DIMENSION = 8192  # framebuffer width or height, pixels
MAX_FRAMEBUFFER_PIXELS = 8192 * 4096  # 32 Mpx = 128 MiB of pixels
MAX_NAME_BYTES = 4096  # desktop name in ServerInit
MAX_REASON_BYTES = 4096  # failure reason strings
MAX_SECURITY_TYPES = 255  # a u8 count anyway
MAX_CUT_TEXT_BYTES = 16 * 1024 * 1024  # ServerCutText is read and dropped in chunks
MAX_CURSOR_DIMENSION = 512  # rich cursor width/height
MAX_SCREENS = 16  # ExtendedDesktopSize screens
MAX_COLOUR_MAP_ENTRIES = 256  # SetColourMapEntries (ignored; we ask for true colour)
SKIP_CHUNK_BYTES = 64 * 1024

# --- message types ---------------------------------------------------------------------------
SERVER_FRAMEBUFFER_UPDATE = 0
SERVER_SET_COLOUR_MAP = 1
SERVER_BELL = 2
SERVER_CUT_TEXT = 3

CLIENT_SET_PIXEL_FORMAT = 0
CLIENT_SET_ENCODINGS = 2
CLIENT_FRAMEBUFFER_UPDATE_REQUEST = 3
CLIENT_KEY_EVENT = 4
CLIENT_POINTER_EVENT = 5
CLIENT_SET_DESKTOP_SIZE = 251
CLIENT_QEMU = 255
QEMU_EXTENDED_KEY_EVENT = 0

# --- security types --------------------------------------------------------------------------
SECURITY_INVALID = 0
SECURITY_NONE = 1
SECURITY_VNC = 2

# --- encodings -------------------------------------------------------------------------------
ENC_RAW = 0
ENC_COPYRECT = 1
ENC_ZLIB = 6
ENC_TIGHT = 7
ENC_ZRLE = 16
ENC_JPEG_QUALITY_0 = -32  # -32 + quality (0..9)
ENC_COMPRESS_LEVEL_0 = -256  # -256 + level (0..9): the server's zlib effort
ENC_DESKTOP_SIZE = -223
ENC_LAST_RECT = -224
ENC_CURSOR = -239
ENC_POINTER_TYPE_CHANGE = -257
ENC_QEMU_EXTENDED_KEY_EVENT = -258
ENC_QEMU_LED_STATE = -261
ENC_EXTENDED_DESKTOP_SIZE = -308

ENCODING_NAMES = {"raw": ENC_RAW, "zlib": ENC_ZLIB, "tight": ENC_TIGHT, "zrle": ENC_ZRLE}

PSEUDO_ENCODINGS = (
    ENC_DESKTOP_SIZE,
    ENC_EXTENDED_DESKTOP_SIZE,
    ENC_LAST_RECT,
    ENC_CURSOR,
    ENC_POINTER_TYPE_CHANGE,
    ENC_QEMU_EXTENDED_KEY_EVENT,
    ENC_QEMU_LED_STATE,
)


class ProtocolError(Exception):
    """The server broke the protocol or a limit; the message is one sentence for people."""


@dataclass(frozen=True)
class PixelFormat:
    bits_per_pixel: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int

    _STRUCT = struct.Struct(">BBBBHHHBBB3x")

    def pack(self) -> bytes:
        return self._STRUCT.pack(
            self.bits_per_pixel,
            self.depth,
            int(self.big_endian),
            int(self.true_colour),
            self.red_max,
            self.green_max,
            self.blue_max,
            self.red_shift,
            self.green_shift,
            self.blue_shift,
        )

    @classmethod
    def unpack(cls, data: bytes) -> PixelFormat:
        bpp, depth, be, tc, rm, gm, bm, rs, gs, bs = cls._STRUCT.unpack(data)
        return cls(bpp, depth, bool(be), bool(tc), rm, gm, bm, rs, gs, bs)


CLIENT_PIXEL_FORMAT = PixelFormat(32, 24, False, True, 255, 255, 255, 16, 8, 0)


@dataclass(frozen=True)
class RectHeader:
    x: int
    y: int
    w: int
    h: int
    encoding: int


RECT_HEADER = struct.Struct(">HHHHi")
SERVER_INIT = struct.Struct(">HH16sI")


def parse_version(greeting: bytes) -> tuple[int, int]:
    """`b"RFB 003.008\\n"` -> (3, 8)."""
    if len(greeting) != 12 or not greeting.startswith(b"RFB ") or greeting[7:8] != b".":
        raise ProtocolError("The other side is not a VNC server.")
    try:
        return int(greeting[4:7]), int(greeting[8:11])
    except ValueError:
        raise ProtocolError("The other side is not a VNC server.") from None


def choose_version(server: tuple[int, int]) -> tuple[int, int]:
    """The highest version we both speak: 3.3, 3.7 or 3.8 (3.4-3.6 count as 3.3)."""
    major, minor = server
    if major < 3:
        raise ProtocolError(f"The VNC server speaks RFB {major}.{minor}, which is too old.")
    if major > 3 or minor >= 8:
        return (3, 8)
    if minor == 7:
        return (3, 7)
    return (3, 3)


def version_bytes(version: tuple[int, int]) -> bytes:
    return b"RFB %03d.%03d\n" % version


def check_framebuffer_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION) or (
        width * height > MAX_FRAMEBUFFER_PIXELS
    ):
        raise ProtocolError(f"The VNC server announced an impossible screen size {width}x{height}.")


# --- client messages -------------------------------------------------------------------------


def set_pixel_format(pf: PixelFormat = CLIENT_PIXEL_FORMAT) -> bytes:
    return struct.pack(">B3x", CLIENT_SET_PIXEL_FORMAT) + pf.pack()


def set_encodings(encodings: list[int]) -> bytes:
    return struct.pack(f">BxH{len(encodings)}i", CLIENT_SET_ENCODINGS, len(encodings), *encodings)


def update_request(incremental: bool, x: int, y: int, w: int, h: int) -> bytes:
    return struct.pack(">BBHHHH", CLIENT_FRAMEBUFFER_UPDATE_REQUEST, int(incremental), x, y, w, h)


def key_event(keysym: int, down: bool) -> bytes:
    return struct.pack(">BBxxI", CLIENT_KEY_EVENT, int(down), keysym & 0xFFFFFFFF)


def qemu_key_event(scancode: int, keysym: int, down: bool) -> bytes:
    return struct.pack(
        ">BBHII",
        CLIENT_QEMU,
        QEMU_EXTENDED_KEY_EVENT,
        int(down),
        keysym & 0xFFFFFFFF,
        scancode & 0xFFFFFFFF,
    )


def pointer_event(x: int, y: int, buttons: int) -> bytes:
    return struct.pack(">BBHH", CLIENT_POINTER_EVENT, buttons & 0xFF, x & 0xFFFF, y & 0xFFFF)


def set_desktop_size(width: int, height: int, screen_id: int = 0) -> bytes:
    """One screen covering the whole framebuffer."""
    return struct.pack(
        ">BxHHBx" + "IHHHHI", CLIENT_SET_DESKTOP_SIZE, width, height, 1,
        screen_id, 0, 0, width, height, 0,
    )  # fmt: skip


# --- reading ---------------------------------------------------------------------------------


class Reader:
    """`asyncio.StreamReader` with exact reads that turn a hang-up into a ProtocolError."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream

    async def exactly(self, n: int) -> bytes:
        try:
            return await self._stream.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            raise ProtocolError("The VNC server closed the connection.") from None
        except OSError as exc:
            raise ProtocolError(
                f"The connection to the VNC server failed: {exc.strerror or exc}."
            ) from None

    async def u8(self) -> int:
        return (await self.exactly(1))[0]

    async def u16(self) -> int:
        return int.from_bytes(await self.exactly(2), "big")

    async def u32(self) -> int:
        return int.from_bytes(await self.exactly(4), "big")

    async def s32(self) -> int:
        return int.from_bytes(await self.exactly(4), "big", signed=True)

    async def skip(self, n: int) -> None:
        while n > 0:
            chunk = min(n, SKIP_CHUNK_BYTES)
            await self.exactly(chunk)
            n -= chunk

    async def string(self, limit: int, what: str) -> str:
        """A u32-length-prefixed string of at most `limit` bytes."""
        n = await self.u32()
        if n > limit:
            raise ProtocolError(f"The VNC server sent a {what} of {n} bytes, more than allowed.")
        return (await self.exactly(n)).decode("utf-8", "replace")

    async def compact_length(self) -> int:
        """Tight's 1-3 byte length (7 bits per byte, low first; at most 22 bits)."""
        b = await self.u8()
        n = b & 0x7F
        if b & 0x80:
            b = await self.u8()
            n |= (b & 0x7F) << 7
            if b & 0x80:
                n |= (await self.u8()) << 14
        return n
