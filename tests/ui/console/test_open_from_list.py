"""Open from the VM list: Enter (or double-click) on a running built-in VM's row shows its
console in the details' Console tab; Detach moves it into its own window."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.backends.builtin.helpers import guest_config, wait_state
from tests.fixtures.builtin import BuiltinEnv
from tests.support import need_kvm
from tests.ui.conftest import run, run_until
from tests.vmm.test_qmp_machine import fb_pixel
from vmgui.backends.builtin import BuiltinBackend
from vmgui.model import VmState

pytestmark = [pytest.mark.kvm, pytest.mark.slow]
W, H = 320, 200


def test_enter_on_a_row_opens_the_console_and_detach_gives_it_a_window(
    qtbot: Any,
    qt_loop: asyncio.AbstractEventLoop,
    builtin_env: BuiltinEnv,
    build_guest: Callable[..., Path],
    make_window: Callable[..., Any],
) -> None:
    need_kvm()
    config = guest_config("screen", build_guest("fb_pattern"), cmdline=f"fb={W}x{H}",
                          framebuffer=(W, H))  # fmt: skip

    async def start() -> str:
        backend = BuiltinBackend()
        await backend.connect()
        try:
            vm = await backend.define(config)
            await backend.start(vm.vm_id)
            await wait_state(backend, vm.vm_id, VmState.RUNNING)
            return vm.vm_id
        finally:
            await backend.close()

    vm_id = run(qt_loop, start())
    window = make_window(["builtin:///"])
    key = ("builtin:///", vm_id)
    run_until(qt_loop, lambda: window.select_vm(key), what="the VM's row")
    run_until(qt_loop, window.open_console_action.isEnabled, what="Open to be enabled")

    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    tab = window.details.console
    assert window.details.currentWidget() is tab and tab.panel is not None
    panel = tab.panel
    run_until(qt_loop, lambda: panel.source is not None, what="the console to open")

    def pattern_shown() -> bool:
        image = panel.view.image
        return image is not None and all(
            image.pixel(x, y) & 0xFFFFFF == fb_pixel(x, y) for x, y in ((1, 1), (W - 1, H - 1))
        )

    run_until(qt_loop, pattern_shown, timeout=30, what="the guest's pattern")

    def serial_shows(text: str) -> bool:
        model = panel.terminal.model
        return any(text in model.text(y) for y in range(model.lines))

    run_until(qt_loop, lambda: serial_shows(f"drawn {W}x{H}"), what="the serial replay")

    panel.detach_action.trigger()
    assert tab.panel is None and key in tab.windows
    console_window = tab.windows[key]
    assert console_window.panel is panel and console_window.isVisible()
    window.open_console_action.trigger()  # raises the existing window, opens nothing new
    assert tab.panel is None and len(tab.windows) == 1
    console_window.close()
    run_until(qt_loop, lambda: key not in tab.windows and panel.source is None, what="closing")

    async def stop() -> None:
        backend = BuiltinBackend()
        await backend.connect()
        try:
            await backend.force_off(vm_id)
        finally:
            await backend.close()

    run(qt_loop, stop())
