"""Root test configuration: Qt offscreen, a qasync loop fixture, shared fixture modules."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Fixture modules owned by each area; each is a plain module of pytest fixtures.
pytest_plugins = [
    "tests.fixtures.libvirtd",
    "tests.fixtures.guests",
]


@pytest.fixture
def qt_loop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the Qt application, current for this test only.

    Tests drive it with `qt_loop.run_until_complete(coro)`; pending tasks are cancelled and the
    loop closed at teardown (never `already_running=True` + `stop()`, which quits the app).
    """
    import qasync

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
