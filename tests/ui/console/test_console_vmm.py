"""The console widgets on a real `vmgui-vmm` (/dev/kvm): the guest's framebuffer on screen,
keys typed into the widget reaching the guest, and its serial echo in the terminal widget."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import run, run_until
from tests.vmm.test_qmp_machine import fb_pixel
from vmgui.console import open_source
from vmgui.console.shm_source import SharedFramebufferSource
from vmgui.console.source import FramebufferSource
from vmgui.console.terminal import TerminalSession
from vmgui.ui.console import keys
from vmgui.ui.console.panel import ConsolePanel
from vmgui.ui.console.view import ConsoleView, Scale

pytestmark = [pytest.mark.kvm, pytest.mark.slow]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
W, H = 320, 200


def started_view(
    qtbot: Any, loop: asyncio.AbstractEventLoop, source: FramebufferSource, w: int, h: int
) -> ConsoleView:
    """Start `source` and show it 1:1 in a ConsoleView with room for a `w`x`h` guest screen."""
    run(loop, source.start())
    view = ConsoleView()
    qtbot.addWidget(view)
    view.attach(source)
    view.set_scale(Scale.ONE_TO_ONE)
    view.resize(w + 40, h + 30)
    view.show()
    return view


def grabbed_guest(view: ConsoleView) -> QImage:
    """The widget's own pixels (as on screen), cropped to where it placed the guest image."""
    x, y, k = view._placement()
    assert k == 1.0
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    return image.copy(int(x), int(y), W, H)


def pattern_mismatches(image: QImage, pokes: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    bad = []
    for y in range(0, H, 3):
        for x in range(0, W, 3):
            want = pokes.get((x, y), fb_pixel(x, y))
            if image.pixel(x, y) & 0xFFFFFF != want:
                bad.append((x, y))
    for (x, y), want in pokes.items():
        if image.pixel(x, y) & 0xFFFFFF != want:
            bad.append((x, y))
    return bad


def test_view_shows_the_guest_framebuffer_and_its_changes(
    console_vmm: Any, qtbot: Any, qt_loop: asyncio.AbstractEventLoop
) -> None:
    vmm = console_vmm("fb_pattern", "--framebuffer", f"{W}x{H}", "--cmdline", f"fb={W}x{H}")
    source = open_source(vmm.endpoint)
    assert isinstance(source, SharedFramebufferSource)
    view = started_view(qtbot, qt_loop, source, W, H)
    run(qt_loop, asyncio.to_thread(vmm.read_serial_until, b"drawn"))
    run_until(qt_loop, lambda: not pattern_mismatches(grabbed_guest(view), {}), what="the pattern")
    # A still guest screen: no damage pushed, nothing repainted (after the last rows' damage).
    run(qt_loop, asyncio.sleep(0.2))
    frames = view.painted_frames
    run(qt_loop, asyncio.sleep(0.5))
    assert view.painted_frames == frames

    # A key typed into the widget (after a click captured the keyboard) makes the guest poke two
    # pixels; the damage is pushed, the widget repaints them.
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton)
    assert view.captured
    qtbot.keyClick(view, Qt.Key.Key_Space)
    run(qt_loop, asyncio.to_thread(vmm.read_serial_until, b"poked"))
    pokes = {(5, 10): 0xFF0000, (W - 20, H // 2): 0x00FF00}
    run_until(qt_loop, lambda: not pattern_mismatches(grabbed_guest(view), pokes), what="pokes")
    shot = view.screenshot()
    assert shot is not None and (shot.width(), shot.height()) == (W, H)
    assert shot.pixel(5, 10) & 0xFFFFFF == 0xFF0000

    # Ctrl+Alt releases the keyboard, and the guest sees both modifiers released again.
    qtbot.keyPress(view, Qt.Key.Key_Control)
    qtbot.keyPress(view, Qt.Key.Key_Alt, Qt.KeyboardModifier.ControlModifier)
    assert not view.captured

    # The guest powers off on the next key: the view says so instead of showing stale pixels.
    closed: list[str] = []
    view.sourceClosed.connect(closed.append)
    source.send_key(0x1C, 0, True)
    run_until(qt_loop, lambda: closed, what="the source to close")
    assert closed == ["The virtual machine stopped."]
    assert view.image is None
    run(qt_loop, source.close())


def echoed(text: str) -> list[int]:
    """The scancodes kbd_echo printed ("sc 0x000000XX" lines; one still arriving is skipped)."""
    lines = text.split("\n")
    return [int(ln[3:], 16) for ln in lines if ln.startswith("sc 0x") and len(ln) == 13]


def native_key(key: Qt.Key, evdev: int, text: str, press: bool = True) -> QKeyEvent:
    kind = QEvent.Type.KeyPress if press else QEvent.Type.KeyRelease
    return QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier, evdev + 8, 0, 0, text)


def test_keys_typed_in_the_panel_reach_the_guest_and_the_serial_tab_shows_the_echo(
    console_vmm: Any, qtbot: Any, qt_loop: asyncio.AbstractEventLoop, monkeypatch: Any
) -> None:
    vmm = console_vmm("kbd_echo", "--framebuffer", f"{W}x{H}")
    panel = ConsolePanel("kbd")
    qtbot.addWidget(panel)
    source = open_source(vmm.endpoint)
    run(qt_loop, source.start())
    panel.show_source(source)
    panel.show_serial(TerminalSession(run(qt_loop, vmm.serial_stream()), panel.terminal.model))
    panel.resize(700, 500)
    panel.show()

    def serial_text() -> str:
        """Everything the terminal holds: scrollback, then the screen."""
        model = panel.terminal.model
        lines = [model.text(0, back) for back in range(model.history_size, 0, -1)]
        return "\n".join(lines + [model.text(y) for y in range(model.lines)])

    run_until(qt_loop, lambda: "kbd ready" in serial_text(), what="kbd ready")
    view = panel.view
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton)
    # Without native scancodes (offscreen) the Qt key is read as a US key: "a" is 0x1E.
    qtbot.keyClick(view, Qt.Key.Key_A)
    # With them, the *position* counts: the key an AZERTY layout calls Q (evdev 30, US "a")
    # arrives as 0x1E too; evdev 103 (Up) is an E0 key.
    monkeypatch.setattr(keys, "_uses_native_scancodes", lambda: True)
    for press in (True, False):
        QApplication.sendEvent(view, native_key(Qt.Key.Key_Q, 30, "q", press))
    for press in (True, False):
        QApplication.sendEvent(view, native_key(Qt.Key.Key_Up, 103, "", press))
    want = [0x1E, 0x9E, 0x1E, 0x9E, 0xE0, 0x48, 0xE0, 0xC8]
    run_until(qt_loop, lambda: len(echoed(serial_text())) >= len(want), what="the echo")
    assert echoed(serial_text()) == want
    panel.tabs.setCurrentIndex(1)
    run_until(qt_loop, lambda: panel.terminal.repaints > 0, what="the serial tab to paint")

    # The Send Key menu's entries press and release in order.
    panel.tabs.setCurrentIndex(0)
    labels = [a.text() for a in panel.send_key_menu.actions()]
    assert labels[:2] == ["Ctrl+Alt+Del", "Ctrl+Alt+Backspace"] and "PrintScreen" in labels
    view.send_keys(["esc"])  # kbd_echo powers off after Esc's break code
    run_until(qt_loop, lambda: panel.source is None, what="the console to end")
    run_until(qt_loop, lambda: "closed by the other side" in serial_text(), what="serial EOF")
    run(qt_loop, panel.close_console())


def test_one_to_one_shows_the_guest_sharp_at_scale_factor_1_5(console_vmm: Any) -> None:
    vmm = console_vmm("fb_pattern", "--framebuffer", f"{W}x{H}", "--cmdline", f"fb={W}x{H}")
    vmm.read_serial_until(b"drawn")
    env = dict(os.environ, QT_SCALE_FACTOR="1.5", QT_QPA_PLATFORM="offscreen", PYTHONPATH=REPO)
    out = subprocess.run(
        [sys.executable, "-m", "tests.ui.console.dpr_probe", vmm.sock],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    bad, dpr, compared = int(out[0]), float(out[1]), int(out[4])
    assert dpr == 1.5 and compared == W * H, out
    assert bad == 0, f"{bad} of the guest's pixels are blurred or shifted at scale factor 1.5"
