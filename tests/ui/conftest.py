"""Fixtures for GUI tests: a real MainWindow on the qasync loop with an isolated config dir."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import shiboken6

from vmgui.settings import Settings, save_settings

T = TypeVar("T")


def run(loop: asyncio.AbstractEventLoop, awaitable: Awaitable[T]) -> T:
    """Run `awaitable` on the test loop (tests/conftest.py explains why that loop is special)."""
    return loop.run_until_complete(awaitable)


def run_until(
    loop: asyncio.AbstractEventLoop,
    predicate: Callable[[], object],
    timeout: float = 15.0,
    what: str = "condition",
) -> None:
    """Spin the qasync loop (Qt events and asyncio tasks) until `predicate()` is truthy."""

    async def poll() -> None:
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.02)

    run(loop, poll())


def wait_dialog(
    loop: asyncio.AbstractEventLoop, get: Callable[[], Any], previous: Any = None
) -> Any:
    """Wait until `get()` returns a new, visible dialog (not `previous`) and return it."""

    def ready() -> bool:
        d = get()
        return d is not None and d is not previous and shiboken6.isValid(d) and d.isVisible()

    run_until(loop, ready, what="dialog")
    return get()


def spin(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    run(loop, asyncio.sleep(seconds))


@pytest.fixture
def backend(qt_loop: asyncio.AbstractEventLoop, libvirtd_uri: str) -> Iterator[Any]:
    """A LibvirtBackend connected to the session's private libvirtd (no reconnecting)."""
    from vmgui.backends.libvirt import LibvirtBackend

    b = LibvirtBackend(libvirtd_uri, reconnect=False)
    qt_loop.run_until_complete(b.connect())
    yield b
    qt_loop.run_until_complete(b.close())


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def make_window(
    qt_loop: asyncio.AbstractEventLoop, qtbot: object, config_home: Path
) -> Iterator[Callable[..., object]]:
    """Factory: make_window(uris=[...], settings=None) -> a shown MainWindow; closed at teardown."""
    from vmgui.app import make_backend
    from vmgui.ui.main_window import MainWindow

    windows: list[MainWindow] = []

    def make(uris: list[str] | None = None, settings: Settings | None = None) -> MainWindow:
        s = settings or Settings(connections=list(uris or []))
        if settings is None:
            save_settings(s)
        w = MainWindow(s, make_backend)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        if shiboken6.isValid(w):
            w.close()
            run(qt_loop, w.shutdown())
            w.deleteLater()
