"""The console widget on a built-in VM booted through firmware (/dev/kvm): SeaBIOS boots a GRUB
ISO, the widget shows GRUB's text screen from ramfb, and keys typed into the widget pick a menu
entry (the path a person takes to choose a boot entry)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tests.guests.grub_iso import build_grub_iso
from tests.ui.conftest import run, run_until
from tests.ui.console.test_console_vmm import started_view
from tests.vmm.firmware.test_firmware_boot import (
    GRUB_CFG,
    KEY_TIMEOUT,
    MENU_TIMEOUT,
    FirmwareVm,
    need_seabios,
)
from vmgui.console import open_source
from vmgui.model.console import SharedFramebufferEndpoint
from vmgui.ui.console.view import ConsoleView

pytestmark = [pytest.mark.kvm, pytest.mark.slow]
#: The ramfb mode SeaBIOS's VGA ROM sets up (tests/vmm/firmware/test_firmware_boot.py).
FB_W, FB_H = 1024, 768
SOCKET_TIMEOUT = 60.0


def wait_socket(vm: FirmwareVm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(vm.sock):
        assert vm.proc.poll() is None, f"VMM exited: {vm.stderr()}"
        assert time.monotonic() < deadline, "QMP socket never appeared"
        time.sleep(0.05)


def wait_serial(loop: asyncio.AbstractEventLoop, vm: FirmwareVm, text: bytes, timeout: float) -> None:
    """Poll the serial file from the test loop itself, so the widget keeps taking framebuffer
    updates meanwhile. (A worker thread's result reaching the qasync loop through
    call_soon_threadsafe was once never delivered here, and the test hung past its timeout.)"""
    run_until(loop, lambda: text in vm.output() or vm.proc.poll() is not None, timeout,
              f"{text!r} on serial")
    assert text in vm.output(), f"VMM exited ({vm.stderr()}) before {text!r}"


def lit_rows_in_grab(view: ConsoleView) -> int:
    """Text rows (16 pixel lines) with a lit pixel in the widget's own pixels, cropped to where
    it placed the guest image: GRUB's menu lights 10 or more, a blank screen none."""
    x, y, k = view._placement()
    assert k == 1.0
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    guest = image.copy(int(x), int(y), FB_W, FB_H)
    rows = set()
    for py in range(0, FB_H, 2):
        if py // 16 in rows:
            continue
        if any(guest.pixel(px, py) & 0xFFFFFF for px in range(0, FB_W, 2)):
            rows.add(py // 16)
    return len(rows)


#: Set in the child pytest process that runs the test body (see the test's docstring).
IN_OWN_PROCESS = "VMGUI_FIRMWARE_CONSOLE_OWN_PROCESS"
#: Two SeaBIOS+GRUB stages in emulated guest code: about 2 minutes here, 4 on a loaded machine.
OWN_PROCESS_TIMEOUT_S = 840


@pytest.mark.timeout(OWN_PROCESS_TIMEOUT_S + 60)
def test_keys_typed_into_the_console_widget_choose_a_grub_entry(
    tmp_path: Path, qtbot: Any, qt_loop: asyncio.AbstractEventLoop
) -> None:
    """Runs its body in a pytest process of its own. After the rest of the suite in one process
    (twice, in CI-style runs) the qasync loop stopped firing its timers in the minutes this test
    waits for GRUB, so the widget never sent the keys and nothing could time out; alone it
    passes every time. Not found yet: which earlier test leaves Qt in that state."""
    if os.environ.get(IN_OWN_PROCESS) != "1":
        child = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--timeout={OWN_PROCESS_TIMEOUT_S}",
             f"{__file__}::test_keys_typed_into_the_console_widget_choose_a_grub_entry"],
            env={**os.environ, IN_OWN_PROCESS: "1"},
            capture_output=True, text=True, timeout=OWN_PROCESS_TIMEOUT_S + 30, check=False,
        )
        assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
        assert "1 passed" in child.stdout, child.stdout[-2000:]
        return
    need_seabios()
    iso = build_grub_iso(tmp_path, GRUB_CFG)
    vm = FirmwareVm(tmp_path, f"{iso},ro")
    try:
        wait_socket(vm, SOCKET_TIMEOUT)
        source = open_source(SharedFramebufferEndpoint(vm.sock))
        view = started_view(qtbot, qt_loop, source, FB_W, FB_H)

        wait_serial(qt_loop, vm, b"Second entry", MENU_TIMEOUT)
        run_until(
            qt_loop, lambda: lit_rows_in_grab(view) >= 10, MENU_TIMEOUT, "GRUB's menu in the widget"
        )

        qtbot.mouseClick(view, Qt.MouseButton.LeftButton)
        assert view.captured
        qtbot.keyClick(view, Qt.Key.Key_Down)
        qtbot.keyClick(view, Qt.Key.Key_Return)
        wait_serial(qt_loop, vm, b"MARKER-SECOND", KEY_TIMEOUT)
        assert b"MARKER-FIRST" not in vm.output()
        run(qt_loop, source.close())
    finally:
        vm.close()
