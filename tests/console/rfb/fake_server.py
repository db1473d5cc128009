"""A scripted RFB server on a socketpair, for client tests that need a misbehaving peer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import numpy as np

from vmgui.console.rfb import wire
from vmgui.console.source import Rect
from vmgui.model.console import VncEndpoint


class Recorder:
    """A SourceListener that keeps every call."""

    def __init__(self) -> None:
        self.damage: list[Rect] = []
        self.sizes: list[tuple[int, int]] = []
        self.closed_with: list[str] = []
        self.states = 0
        self.closed_event = asyncio.Event()

    def damaged(self, rects: list[Rect]) -> None:
        self.damage.extend(rects)

    def resized(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    def closed(self, reason: str) -> None:
        self.closed_with.append(reason)
        self.closed_event.set()

    def state_changed(self) -> None:
        self.states += 1


def server_init(w: int, h: int, name: bytes = b"fake") -> bytes:
    return struct.pack(">HH", w, h) + wire.CLIENT_PIXEL_FORMAT.pack() + struct.pack(
        ">I", len(name)
    ) + name


def update(*rects: bytes) -> bytes:
    return struct.pack(">BxH", 0, len(rects)) + b"".join(rects)


def rect(x: int, y: int, w: int, h: int, enc: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HHHHi", x, y, w, h, enc) + payload


def raw_rect(x: int, y: int, pixels: np.ndarray) -> bytes:
    h, w = pixels.shape
    return rect(x, y, w, h, wire.ENC_RAW, pixels.astype("<u4").tobytes())


class FakeServer:
    def __init__(self) -> None:
        self._ours, theirs = socket.socketpair()
        self.endpoint = VncEndpoint(fd=theirs.detach(), local=True)
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.received = bytearray()
        self._drain: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if hasattr(self, "writer"):  # attached to an accepted connection
            return
        self._ours.setblocking(False)
        self.reader, self.writer = await asyncio.open_connection(sock=self._ours)

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve an accepted connection instead of the socketpair."""
        self.reader, self.writer = reader, writer

    async def handshake(
        self, w: int = 64, h: int = 48, version: bytes = b"RFB 003.008\n"
    ) -> None:
        """Security None, then ServerInit; afterwards everything the client sends is kept."""
        await self.open()
        self.writer.write(version)
        client_version = await self.reader.readexactly(12)
        if client_version == b"RFB 003.003\n":
            self.writer.write(struct.pack(">I", wire.SECURITY_NONE))
        else:
            self.writer.write(b"\x01\x01")
            await self.reader.readexactly(1)
            if client_version == b"RFB 003.008\n":
                self.writer.write(b"\0\0\0\0")
        await self.reader.readexactly(1)  # ClientInit
        self.writer.write(server_init(w, h))
        self._drain = asyncio.ensure_future(self._keep_reading())

    async def _keep_reading(self) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await self.reader.read(65536):
                self.received += data

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
