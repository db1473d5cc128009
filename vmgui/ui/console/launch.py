"""`vmgui --connect URI --open-console NAME [--screenshot FILE]`: one VM's console, alone.

Like `virt-viewer NAME`: a console window at 1:1 scale, no manager window. With a screenshot
file it saves the window once the guest's first frame is on screen and exits, so scripts and
tests can check a console without a mouse.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from PySide6.QtWidgets import QApplication

from vmgui.backends.base import Backend, BackendError, find_vm
from vmgui.ui.console.panel import ConsolePanel, ConsoleWindow
from vmgui.ui.console.view import Scale

#: How long --screenshot waits for the console's first frame.
FIRST_FRAME_TIMEOUT_S = 60.0


def _say(text: str) -> None:
    print(f"vmgui: {text.strip().splitlines()[0] if text.strip() else 'failed'}", file=sys.stderr)


async def open_console_window(backend: Backend, name: str) -> ConsoleWindow:
    """A shown ConsoleWindow on VM `name` (BackendError when there is no such VM)."""
    vm = await find_vm(backend, name)
    panel = ConsolePanel(vm.name)
    window = ConsoleWindow(panel)
    panel.view.set_scale(Scale.ONE_TO_ONE)
    panel.one_to_one_action.setChecked(True)
    await panel.open(backend, vm.vm_id)
    # Sized before it is shown: a resize racing the window system's first configure can lose.
    window.fit_to_guest()
    window.show()
    return window


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _first_frame(window: ConsoleWindow) -> bool:
    view = window.panel.view
    if view.painted_frames:
        return True
    painted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    view.firstFramePainted.connect(lambda: _resolve(painted))
    try:
        await asyncio.wait_for(painted, FIRST_FRAME_TIMEOUT_S)
    except TimeoutError:
        return False
    return True


async def run_open_console(
    app: QApplication, uri: str, name: str, screenshot: str, factory: Callable[[str], Backend]
) -> int:
    """The whole `--open-console` run; returns the exit status."""
    try:
        backend = factory(uri)
        await backend.connect()
    except BackendError as e:
        _say(str(e))
        return 1
    window: ConsoleWindow | None = None
    try:
        window = await open_console_window(backend, name)
        if screenshot:
            return await _save_when_shown(app, window, screenshot)
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        window.closed.connect(lambda: _resolve(closed))
        await closed
        return 0
    except BackendError as e:
        _say(str(e))
        return 1
    finally:
        if window is not None:
            await window.panel.close_console()
            window.close()
        await backend.close()


async def _save_when_shown(app: QApplication, window: ConsoleWindow, path: str) -> int:
    panel = window.panel
    if panel.source is None:
        _say(panel.status.text() or "This virtual machine has no graphical console.")
        return 1
    if not await _first_frame(window):
        _say(f"the console showed nothing within {FIRST_FRAME_TIMEOUT_S:.0f} s")
        return 1
    await asyncio.sleep(0.05)  # let the first frame's paint reach the window (no processEvents()
    # here: it would run the loop's callbacks re-entrantly inside this task)
    if not window.grab().save(path, "PNG"):
        _say(f"cannot write the screenshot to {path}")
        return 1
    return 0
