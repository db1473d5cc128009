"""A serial console's terminal state (pyte) and the session that feeds it from a ByteStream.

`TerminalModel` is the VT100 screen plus scrollback; it records which screen lines changed so
a view repaints only those. `TerminalSession` pumps a `ByteStream` (a serial port, a libvirt
console stream) into the model and queues the user's keystrokes back, in order; when the other
side hangs up it says so once and stops. Neither knows about Qt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pyte
from pyte.screens import Char

from vmgui.model.console import ByteStream

log = logging.getLogger(__name__)

#: Lines kept above the screen for scrolling back.
SCROLLBACK_LINES = 5000
MIN_COLUMNS, MIN_LINES = 2, 1
MAX_COLUMNS, MAX_LINES = 1000, 500
#: pyte keeps private modes shifted left by 5; DECCKM (application cursor keys) is mode 1.
_DECCKM = 1 << 5

Line = dict[int, Char]


@dataclass(frozen=True)
class Cursor:
    x: int
    y: int
    visible: bool


class _Screen(pyte.HistoryScreen):
    """pyte's screen, with what it answers the guest (cursor reports...) collected."""

    def __init__(self, columns: int, lines: int, history: int) -> None:
        super().__init__(columns, lines, history=history)
        self.replies: list[bytes] = []

    def write_process_input(self, data: str) -> None:
        self.replies.append(data.encode())


class TerminalModel:
    """Screen + scrollback; `take_dirty()` returns the screen lines changed since last asked."""

    def __init__(
        self, columns: int = 80, lines: int = 25, scrollback: int = SCROLLBACK_LINES
    ) -> None:
        self.screen = _Screen(columns, lines, scrollback)
        # New-line mode: a bare LF also returns the carriage. Firmware, boot loaders and small
        # guests print "\n" alone; a Linux tty's "\r\n" looks the same either way.
        self.screen.set_mode(pyte.modes.LNM)
        self.stream = pyte.ByteStream(self.screen)

    @property
    def columns(self) -> int:
        return int(self.screen.columns)

    @property
    def lines(self) -> int:
        return int(self.screen.lines)

    def feed(self, data: bytes) -> bytes:
        """Interpret guest output; returns what the terminal must answer (usually b"")."""
        self.stream.feed(data)
        # Device-status and attribute queries are answered to the guest, like a real terminal.
        replies, self.screen.replies = self.screen.replies, []
        return b"".join(replies)

    def take_dirty(self) -> set[int]:
        dirty = {y for y in self.screen.dirty if 0 <= y < self.lines}
        self.screen.dirty.clear()
        return dirty

    @property
    def history_size(self) -> int:
        return len(self.screen.history.top)

    def line(self, y: int, scrolled: int = 0) -> Line:
        """Screen line `y` as seen `scrolled` lines back into the history (0: the live screen)."""
        top = self.screen.history.top
        scrolled = max(0, min(scrolled, len(top)))
        if y < scrolled:
            return top[len(top) - scrolled + y]  # type: ignore[no-any-return]
        return self.screen.buffer[y - scrolled]  # type: ignore[no-any-return]

    def text(self, y: int, scrolled: int = 0) -> str:
        line = self.line(y, scrolled)
        return "".join(line[x].data for x in range(self.columns)).rstrip()

    @property
    def cursor(self) -> Cursor:
        c = self.screen.cursor
        return Cursor(int(c.x), int(c.y), not c.hidden)

    @property
    def application_cursor_keys(self) -> bool:
        return _DECCKM in self.screen.mode

    def resize(self, columns: int, lines: int) -> None:
        """New size; lines that fall off the top go to the scrollback, not away."""
        columns = max(MIN_COLUMNS, min(columns, MAX_COLUMNS))
        lines = max(MIN_LINES, min(lines, MAX_LINES))
        if (columns, lines) == (self.columns, self.lines):
            return
        screen = self.screen
        if lines < self.lines:
            # pyte would delete lines from the top; keep the cursor's line instead, scrolling
            # what falls off the top into the history.
            drop = max(0, screen.cursor.y - lines + 1)
            for y in range(drop):
                screen.history.top.append(screen.buffer[y])
            for y in range(lines):
                screen.buffer[y] = screen.buffer[y + drop]
            for y in range(lines, self.lines):
                screen.buffer.pop(y, None)
            screen.cursor.y -= drop
            screen.lines = lines
            screen.set_margins()
        screen.resize(lines, columns)
        screen.dirty.update(range(lines))


class TerminalSession:
    """Feeds a ByteStream into a TerminalModel; `changed` fires after each burst of output.

    `ended` is set (with a sentence in `end_reason`) when the stream reaches EOF or fails.
    """

    def __init__(
        self,
        stream: ByteStream,
        model: TerminalModel,
        changed: Callable[[], None] | None = None,
        ended: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = stream
        self.model = model
        self.changed = changed
        self.on_end = ended
        self.end_reason = ""
        self.finished = False
        self._writes: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]

    def send(self, data: bytes) -> None:
        """Queue keystrokes for the guest (order kept; dropped once the console ended)."""
        if data and not self.finished:
            self._writes.put_nowait(data)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.stream.read()
                if not data:
                    self._finish("The serial console was closed by the other side.")
                    return
                reply = self.model.feed(data)
                if reply:
                    self.send(reply)
                if self.changed is not None:
                    self.changed()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("serial console read failed", exc_info=True)
            self._finish(f"The serial console stopped: {_sentence(e)}")

    async def _write(self) -> None:
        try:
            while True:
                data = await self._writes.get()
                await self.stream.write(data)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("serial console write failed", exc_info=True)
            self._finish(f"Typing into the serial console failed: {_sentence(e)}")

    def _finish(self, reason: str) -> None:
        if self.finished:
            return
        self.finished = True
        self.end_reason = reason
        if self.on_end is not None:
            self.on_end(reason)

    async def close(self) -> None:
        self.finished = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await self.stream.close()


def _sentence(exc: BaseException) -> str:
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return text if text.endswith(".") else text + "."
