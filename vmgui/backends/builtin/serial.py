"""The serial console of a built-in VM as a `ByteStream`.

With the VMM's `--serial unix:PATH` endpoint it is a plain stream socket both ways (the VMM
replays recent output to a new viewer). Older VMMs write the guest's output to a file instead;
then the stream follows that file and refuses input with a sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from vmgui.backends.base import BackendError

READ_CHUNK = 65536
FILE_POLL_S = 0.1


class SocketStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, path: str) -> SocketStream:
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as exc:
            raise BackendError(f"Cannot open the serial console: {exc.strerror or exc}.") from None
        return cls(reader, writer)

    async def read(self) -> bytes:
        try:
            return await self._reader.read(READ_CHUNK)
        except OSError:
            return b""

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise BackendError(f"The serial console is closed: {exc.strerror or exc}.") from None

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class FileFollowStream:
    """Guest output appended to a file: read everything, then what is added; input refused."""

    def __init__(self, fd: int, alive: asyncio.Event) -> None:
        self._fd = fd
        self._ended = alive

    @classmethod
    def open(cls, path: str, ended: asyncio.Event) -> FileFollowStream:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackendError(f"Cannot open the serial console: {exc.strerror or exc}.") from None
        return cls(fd, ended)

    async def read(self) -> bytes:
        while self._fd >= 0:
            data = os.read(self._fd, READ_CHUNK)  # a regular file: never blocks
            if data:
                return data
            if self._ended.is_set():
                return b""
            await asyncio.sleep(FILE_POLL_S)
        return b""

    async def write(self, data: bytes) -> None:
        raise BackendError("This VMM's serial console is output only.")

    async def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
