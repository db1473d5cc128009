"""QMP wire format: framing of requests, encoding of replies and events, the error type, and
fd passing (the socket itself comes from unix_socket.py). No command knowledge here.

Requests are JSON texts split by bracket depth like QEMU's streamer (no newline needed); every
message we send is one JSON object followed by CRLF.
"""

from __future__ import annotations

import array
import asyncio
import json
import socket
import time
from typing import Any

#: Largest single request; a longer one is answered with an error and discarded.
MAX_MESSAGE = 1 << 20
#: JSON nesting allowed in a request (QEMU's parser limit).
MAX_NESTING = 1024


class QmpError(Exception):
    """A command failure reported to the client with a QMP error class."""

    def __init__(self, desc: str, error_class: str = "GenericError") -> None:
        super().__init__(desc)
        self.desc = desc
        self.error_class = error_class


class FramingError(QmpError):
    """The byte stream cannot be split into messages any more (too long, too deep): the server
    answers once and closes the connection, since where the next message starts is unknowable."""


def timestamp() -> dict[str, int]:
    ns = time.time_ns()
    return {"seconds": ns // 1_000_000_000, "microseconds": ns // 1000 % 1_000_000}


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(", ", ": ")).encode() + b"\r\n"


def error_reply(e: QmpError) -> dict[str, Any]:
    return {"error": {"class": e.error_class, "desc": e.desc}}


class JsonSplitter:
    """Splits a byte stream into top-level JSON texts by bracket depth, like QEMU's streamer.

    Yields each complete text as bytes; a stray closing bracket or garbage between texts yields a
    QmpError and the stream goes on after it; a text too long or too deep yields a FramingError
    (the caller closes the connection: resynchronising inside a runaway text would read its
    payload as new requests).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._scanned = 0
        self._bad: str | None = None

    def feed(self, data: bytes) -> list[bytes | QmpError]:
        out: list[bytes | QmpError] = []
        self._buf += data
        buf = self._buf
        i = self._scanned
        start = 0
        n = len(buf)
        while i < n:
            c = buf[i]
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif c == 0x5C:  # backslash
                    self._escape = True
                elif c == 0x22:
                    self._in_string = False
            elif c == 0x22:
                self._in_string = True
            elif c in (0x7B, 0x5B):  # { [
                if self._depth == 0:
                    if bytes(buf[start:i]).strip():
                        out.append(self._take(buf, start, i))  # garbage before a new message
                    start = i
                self._depth += 1
                if self._depth > MAX_NESTING:
                    self._bad = "JSON nesting too deep"
            elif c in (0x7D, 0x5D):  # } ]
                self._depth -= 1
                if self._depth <= 0:
                    out.append(self._take(buf, start, i + 1))
                    start = i + 1
            elif self._depth == 0 and c in (0x20, 0x09, 0x0A, 0x0D):
                if i > start and bytes(buf[start:i]).strip():
                    out.append(self._take(buf, start, i + 1))
                start = i + 1
            i += 1
            if i - start > MAX_MESSAGE and self._bad is None:
                self._bad = "JSON message too long"
        del buf[:start]
        self._scanned = len(buf)
        if self._bad is not None and (self._depth <= 0 or len(buf) > MAX_MESSAGE):
            # A runaway text: drop what we have and start over at the next byte.
            out.append(FramingError(self._bad))
            self._reset()
        return out

    def _take(self, buf: bytearray, start: int, end: int) -> bytes | QmpError:
        text = bytes(buf[start:end])
        framing, stray = self._bad, self._depth < 0
        self._depth = 0
        self._bad = None
        if framing is not None:
            return FramingError(framing)
        if stray:
            return QmpError("JSON parse error, expecting value")
        return text

    def _reset(self) -> None:
        self._buf.clear()
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._scanned = 0
        self._bad = None


async def send_with_fd(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes, fd: int
) -> int:
    """Send a first chunk of `data` with `fd` attached; returns how many bytes went out."""
    fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())]
    while True:
        try:
            return sock.sendmsg([data], fds)
        except BlockingIOError:
            await _writable(loop, sock)


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_writer(sock.fileno())
