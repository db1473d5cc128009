"""The serial terminal model (pyte) and session: dirty lines, scrollback, replies, EOF."""

from __future__ import annotations

import asyncio

from vmgui.console.terminal import TerminalModel, TerminalSession


def test_feed_marks_only_the_changed_lines_dirty() -> None:
    model = TerminalModel(20, 5)
    model.take_dirty()
    model.feed(b"hello\r\n")
    assert model.take_dirty() == {0}
    assert model.text(0) == "hello" and model.cursor.y == 1
    model.feed(b"\x1b[3;1Hx")
    assert model.take_dirty() == {2}
    assert model.take_dirty() == set()


def test_lines_scrolled_off_the_top_stay_in_scrollback() -> None:
    model = TerminalModel(20, 3, scrollback=10)
    model.feed(b"".join(b"line %d\r\n" % i for i in range(8)))
    assert model.history_size == 6
    assert [model.text(y) for y in range(3)] == ["line 6", "line 7", ""]
    assert [model.text(y, scrolled=2) for y in range(3)] == ["line 4", "line 5", "line 6"]
    assert model.text(0, scrolled=99) == "line 0"  # clamped to the oldest line
    model.feed(b"".join(b"more %d\r\n" % i for i in range(20)))
    assert model.history_size == 10  # bounded


def test_shrinking_keeps_the_cursor_line_and_moves_the_rest_to_scrollback() -> None:
    model = TerminalModel(20, 6)
    model.feed(b"a\r\nb\r\nc\r\nd\r\ne")
    model.resize(10, 3)
    assert (model.columns, model.lines) == (10, 3)
    assert [model.text(y) for y in range(3)] == ["c", "d", "e"]
    assert model.cursor.y == 2
    assert [model.text(y, scrolled=2) for y in range(2)] == ["a", "b"]
    model.resize(30, 8)
    assert model.lines == 8 and model.take_dirty() == set(range(8))


def test_a_bare_line_feed_starts_a_new_line() -> None:
    model = TerminalModel(20, 5)
    model.feed(b"ready\nsc 1\n")
    assert [model.text(0), model.text(1)] == ["ready", "sc 1"]


def test_device_status_query_is_answered() -> None:
    model = TerminalModel(20, 5)
    model.feed(b"ab")
    assert model.feed(b"\x1b[6n") == b"\x1b[1;3R"


def test_application_cursor_mode_follows_the_guest() -> None:
    model = TerminalModel()
    assert not model.application_cursor_keys
    model.feed(b"\x1b[?1h")
    assert model.application_cursor_keys


class FakeStream:
    """A ByteStream over queues: `incoming` feeds read(), writes are collected."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        self.written: list[bytes] = []
        self.closed = False

    async def read(self) -> bytes:
        item = await self.incoming.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    async def close(self) -> None:
        self.closed = True


def test_session_feeds_output_writes_input_in_order_and_reports_eof() -> None:
    async def scenario() -> tuple[FakeStream, TerminalSession, list[str], int]:
        stream, model = FakeStream(), TerminalModel(20, 4)
        ends: list[str] = []
        changes = 0

        def changed() -> None:
            nonlocal changes
            changes += 1

        session = TerminalSession(stream, model, changed, ends.append)
        session.start()
        stream.incoming.put_nowait(b"login: ")
        session.send(b"r")
        session.send(b"oot\r")
        await asyncio.sleep(0.05)
        stream.incoming.put_nowait(b"")
        await asyncio.sleep(0.05)
        session.send(b"ignored after EOF")
        await session.close()
        return stream, session, ends, changes

    stream, session, ends, changes = asyncio.run(scenario())
    assert session.model.text(0) == "login:"
    assert b"".join(stream.written) == b"root\r"
    assert ends == ["The serial console was closed by the other side."]
    assert changes == 1 and stream.closed


def test_session_read_error_is_one_sentence() -> None:
    async def scenario() -> list[str]:
        stream, ends = FakeStream(), list[str]()
        session = TerminalSession(stream, TerminalModel(), ended=ends.append)
        session.start()
        stream.incoming.put_nowait(ConnectionResetError("Connection reset by peer"))
        await asyncio.sleep(0.05)
        await session.close()
        return ends

    assert asyncio.run(scenario()) == ["The serial console stopped: Connection reset by peer."]
