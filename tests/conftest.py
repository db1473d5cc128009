"""Root test configuration: Qt offscreen, a qasync loop fixture, shared fixture modules."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Fixture modules owned by each area; each is a plain module of pytest fixtures.
pytest_plugins = [
    "tests.fixtures.libvirtd",
    "tests.fixtures.guests",
    "tests.fixtures.builtin",
    "tests.fixtures.console",
]


@pytest.fixture(autouse=True, scope="session")
def _private_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The app (and every vmgui process a test starts) logs here, not in the user's log dir."""
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if saved is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = saved


@functools.cache
def _test_loop_class() -> type:
    import qasync

    class TestQEventLoop(qasync.QEventLoop):  # type: ignore[misc, name-defined]
        """qasync's loop, kept marked as asyncio's running loop for the whole test.

        Qt dispatches the loop's callbacks in *any* processEvents(): qtbot's clicks, pytest-qt's
        teardown, and the extra pass qasync's run_until_complete makes after it has cleared the
        running loop. A backend task step resumed there sees no running loop and dies ("no
        running event loop", or an asyncio.Event bound to no loop), and rows stop following
        events. In the app the loop never stops, so only tests meet this; here the loop stays
        "running" between runs and run_until_complete skips the trailing pass.
        """

        def run_forever(self) -> None:
            try:
                super().run_forever()
            finally:
                asyncio.events._set_running_loop(self)

        def run_until_complete(self, future: Any) -> Any:
            fut = asyncio.ensure_future(future, loop=self)
            fut.add_done_callback(lambda _f: self.stop())
            self.run_forever()
            if not fut.done():
                raise RuntimeError("the event loop stopped before the awaited work finished")
            return fut.result()

    return TestQEventLoop


#: The timer objects of closed test loops (see the end of qt_loop).
_CLOSED_LOOP_TIMERS: list[object] = []


@pytest.fixture
def qt_loop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the Qt application, current (and "running") for this test only.

    Tests drive it with `qt_loop.run_until_complete(coro)`; pending tasks are cancelled and the
    loop closed at teardown (never `already_running=True` + `stop()`, which quits the app).
    Plain `asyncio.run()` cannot be used inside a test that takes this fixture.
    """
    loop = _test_loop_class()(qapp)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    try:
        yield loop
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.events._set_running_loop(None)
        loop.close()
        asyncio.set_event_loop(None)
        # qasync's close() only flags its timer object: Qt timers of handles still scheduled (a
        # cancelled wait_for's timeout, a late call_soon_threadsafe) stay armed and are killed
        # when they fire. Left to the garbage collector, the object may be destroyed on a worker
        # thread, which cannot stop them, and their next event reaches freed memory (a segfault
        # tests later). Kept here, it is never destroyed off the GUI thread.
        _CLOSED_LOOP_TIMERS.append(getattr(loop, "_timer", None))
