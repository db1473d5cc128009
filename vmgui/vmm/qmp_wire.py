"""QMP wire format: framing of requests, encoding of replies and events, the error type, and
the control socket itself (mode 0600, atomic creation, fd passing). No command knowledge here.

Requests are JSON texts split by bracket depth like QEMU's streamer (no newline needed); every
message we send is one JSON object followed by CRLF.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import json
import os
import socket
import stat
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


def timestamp() -> dict[str, int]:
    ns = time.time_ns()
    return {"seconds": ns // 1_000_000_000, "microseconds": ns // 1000 % 1_000_000}


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(", ", ": ")).encode() + b"\r\n"


def error_reply(e: QmpError) -> dict[str, Any]:
    return {"error": {"class": e.error_class, "desc": e.desc}}


class JsonSplitter:
    """Splits a byte stream into top-level JSON texts by bracket depth, like QEMU's streamer.

    Yields each complete text as bytes; a text that breaks framing (too long, too deep, a stray
    closing bracket) yields a QmpError instead and the stream resynchronises after it.
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
            out.append(QmpError(self._bad))
            self._reset()
        return out

    def _take(self, buf: bytearray, start: int, end: int) -> bytes | QmpError:
        text = bytes(buf[start:end])
        bad = self._bad
        if self._depth < 0:
            bad = "JSON parse error, expecting value"
        self._depth = 0
        self._bad = None
        if bad is not None:
            return QmpError(bad)
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


def _private_dir(directory: str) -> str:
    """tempfile.mkdtemp(prefix=".qmp-", dir=directory) without importing tempfile (it pulls in
    shutil and random: ~3 ms of a --qmp start-up)."""
    for _ in range(100):
        name = os.path.join(directory, f".qmp-{os.urandom(6).hex()}")
        try:
            os.mkdir(name, 0o700)
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, "no free temporary directory name", directory)


def bind_unix_socket(path: str) -> socket.socket:
    """A listening Unix socket at `path`, mode 0600 from the moment it appears there.

    Binds inside a private temporary directory, fixes the mode, then renames into place, so no
    other user ever sees a wider mode and a stale socket (its VMM gone) is replaced atomically.
    A socket someone still listens on, or any non-socket file, is left alone and refused.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError(f"QMP socket directory {directory} does not exist")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(f"QMP socket path {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            pass  # stale: nobody listens; replaced below
        else:
            raise OSError(f"QMP socket {path} is in use by another running VMM")
        finally:
            probe.close()
    private = _private_dir(directory)
    tmp = os.path.join(private, "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(tmp)
        os.chmod(tmp, 0o600)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
        os.rename(tmp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(private)
    return sock
