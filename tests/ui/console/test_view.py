"""ConsoleView and SerialTerminalView with in-memory sources: damage, scaling, HiDPI, input."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QApplication

from tests.ui.console.fake_source import FakeSource, checkerboard
from vmgui.console.source import Rect
from vmgui.console.terminal import TerminalModel
from vmgui.ui.console.terminal_view import SerialTerminalView
from vmgui.ui.console.view import CAPTURE_HINT, RELEASE_HINT, ConsoleView, Scale

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def shown_view(qtbot: Any, source: FakeSource, w: int = 200, h: int = 150) -> ConsoleView:
    view = ConsoleView()
    qtbot.addWidget(view)
    view.attach(source)  # type: ignore[arg-type]
    view.resize(w, h)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.painted_frames > 0)
    return view


def test_damage_repaints_only_the_damaged_rectangle(qtbot: Any) -> None:
    source = FakeSource(64, 48)
    view = shown_view(qtbot, source)
    view.set_scale(Scale.ONE_TO_ONE)
    qtbot.wait(50)
    frames = view.painted_frames
    source.put(10, 20, 0x123456)
    source.damage(Rect(10, 20, 1, 1))
    qtbot.waitUntil(lambda: view.painted_frames > frames)
    assert view.last_painted == view._widget_rect(Rect(10, 20, 1, 1))
    assert view.last_painted.width() == 1 and view.last_painted.height() == 1
    qtbot.wait(100)
    assert view.painted_frames == frames + 1  # nothing changed, nothing painted
    x, y, _k = view._placement()
    assert view.grab().toImage().pixel(int(x) + 10, int(y) + 20) & 0xFFFFFF == 0x123456


def test_fit_keeps_the_aspect_and_centres(qtbot: Any) -> None:
    view = shown_view(qtbot, FakeSource(64, 48), 400, 150)
    x, y, k = view._placement()
    assert k == pytest.approx(150 / 48) and y == 0 and x == (400 - 64 * k) // 2
    assert view.guest_position(QPointF(x + 1, 1)) == (0, 0)
    assert view.guest_position(QPointF(2, 2)) is None  # the black bar, not the guest


@pytest.mark.parametrize("factor", ["1.25", "1.5"])
def test_one_to_one_is_sharp_at_fractional_scale_factors(factor: str) -> None:
    env = dict(os.environ, QT_SCALE_FACTOR=factor, QT_QPA_PLATFORM="offscreen", PYTHONPATH=REPO)
    out = subprocess.run(
        [sys.executable, "-m", "tests.ui.console.dpr_probe"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    bad, dpr, width = int(out[0]), float(out[1]), int(out[2])
    assert dpr == float(factor) and width == round(160 * float(factor))
    assert bad == 0, f"{bad} guest pixels blurred or shifted at scale factor {factor}"


def key(kind: QEvent.Type, k: Qt.Key, mods: Any = Qt.KeyboardModifier.NoModifier, text: str = "",
        repeat: bool = False) -> QKeyEvent:  # fmt: skip
    return QKeyEvent(kind, k, mods, text, repeat)


def test_keyboard_capture_repeat_and_the_release_combination(qtbot: Any) -> None:
    source = FakeSource()
    view = shown_view(qtbot, source)
    assert view.hint() == CAPTURE_HINT
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert source.keys == []  # not captured yet: nothing reaches the guest
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton)
    assert view.captured and view.hint() == RELEASE_HINT
    press, release = QEvent.Type.KeyPress, QEvent.Type.KeyRelease
    # Auto-repeat: repeated presses, one release at the end (as a PC keyboard does).
    QApplication.sendEvent(view, key(press, Qt.Key.Key_A, text="a"))
    QApplication.sendEvent(view, key(release, Qt.Key.Key_A, text="a", repeat=True))
    QApplication.sendEvent(view, key(press, Qt.Key.Key_A, text="a", repeat=True))
    QApplication.sendEvent(view, key(release, Qt.Key.Key_A, text="a"))
    assert source.keys == [(0x1E, ord("a"), True), (0x1E, ord("a"), True), (0x1E, ord("a"), False)]
    # Tab belongs to the guest while captured.
    source.keys.clear()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert source.keys == [(0x0F, 0xFF09, True), (0x0F, 0xFF09, False)]
    # Shift held, then Ctrl+Alt: capture ends and every key the guest saw pressed is released.
    source.keys.clear()
    ctrl = Qt.KeyboardModifier.ControlModifier
    QApplication.sendEvent(view, key(press, Qt.Key.Key_Shift))
    QApplication.sendEvent(view, key(press, Qt.Key.Key_Control))
    QApplication.sendEvent(view, key(press, Qt.Key.Key_Alt, ctrl))
    assert not view.captured and view.hint() == CAPTURE_HINT
    pressed = [(s, d) for s, _k, d in source.keys]
    assert pressed == [(0x2A, True), (0x1D, True), (0x1D, False), (0x2A, False)]


def test_send_keys_presses_in_order_and_releases_in_reverse(qtbot: Any) -> None:
    source = FakeSource()
    view = shown_view(qtbot, source)
    view.send_keys(["ctrl", "alt", "delete"])
    assert [(s, d) for s, _k, d in source.keys] == [
        (0x1D, True), (0x38, True), (0xD3, True), (0xD3, False), (0x38, False), (0x1D, False),
    ]  # fmt: skip


def test_absolute_pointer_buttons_and_wheel(qtbot: Any) -> None:
    source = FakeSource(64, 48, absolute=True)
    view = shown_view(qtbot, source, 64, 48)
    view.setMinimumSize(0, 0)
    view.resize(64, 48)
    view.set_scale(Scale.ONE_TO_ONE)
    x, y, _k = view._placement()
    at = QPoint(int(x) + 5, int(y) + 7)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=at)
    assert source.pointer[-2:] == [(5, 7, 1), (5, 7, 0)]
    source.pointer.clear()
    qtbot.mouseMove(view, at)
    view.wheelEvent(_wheel(QPointF(at), 120))
    assert source.pointer[-2:] == [(5, 7, 8), (5, 7, 0)]


def _wheel(pos: QPointF, dy: int) -> Any:
    from PySide6.QtCore import QPoint as P
    from PySide6.QtGui import QWheelEvent

    return QWheelEvent(pos, pos, P(0, 0), P(0, dy), Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip


def test_closed_source_drops_the_image_and_shows_black(qtbot: Any) -> None:
    source = FakeSource()
    view = shown_view(qtbot, source)
    closed: list[str] = []
    view.sourceClosed.connect(closed.append)
    assert source.listener is not None
    source.listener.closed("The virtual machine stopped.")
    assert view.image is None and closed == ["The virtual machine stopped."]
    image = view.grab().toImage()
    assert image.pixel(50, 50) & 0xFFFFFF == 0


class NullSession:
    def __init__(self, model: TerminalModel) -> None:
        self.model = model
        self.sent: list[bytes] = []
        self.changed: Any = None
        self.on_end: Any = None

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def test_terminal_view_repaints_only_dirty_lines_and_types(qtbot: Any) -> None:
    view = SerialTerminalView()
    qtbot.addWidget(view)
    view.resize(500, 300)
    session = NullSession(TerminalModel())
    view.attach(session)  # type: ignore[arg-type]
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.repaints > 0)
    session.model.take_dirty()
    before = view.repaints
    session.model.feed(b"\x1b[3;1Hhello")
    view.model_changed()
    qtbot.waitUntil(lambda: view.repaints > before)
    painted = view.last_painted
    assert painted.top() == 2 * view.cell_h and painted.height() == view.cell_h
    qtbot.keyClick(view, Qt.Key.Key_Up)
    qtbot.keyClicks(view, "ls")
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert b"".join(session.sent) == b"\x1b[Als\r\x03"


def test_terminal_scrollback_copy_and_paste(qtbot: Any) -> None:
    view = SerialTerminalView()
    qtbot.addWidget(view)
    view.resize(400, 10 * view.cell_h + 4)
    session = NullSession(TerminalModel())
    view.attach(session)  # type: ignore[arg-type]
    view.show()
    session.model.feed(b"".join(b"line %d\n" % i for i in range(40)))
    view.model_changed()
    qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > 0)
    bar = view.verticalScrollBar()
    bar.setValue(0)
    assert view.scrolled == session.model.history_size
    # Select the first visible row (the oldest line) and copy it.
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(0, 2))
    qtbot.mouseMove(view.viewport(), QPoint(6 * view.cell_w, 2))
    view._sel_end = view._cell_at(QPoint(6 * view.cell_w, 2))
    assert view.selected_text() == "line 0"
    view.copy()
    assert QApplication.clipboard().text() == "line 0"
    QApplication.clipboard().setText("echo hi\n")
    view.paste()
    assert session.sent[-1] == b"echo hi\r" and view.scrolled == 0


def test_grab_of_view_is_rgb32(qtbot: Any) -> None:
    view = shown_view(qtbot, FakeSource(64, 48), 64, 48)
    view.set_scale(Scale.ONE_TO_ONE)
    x, y, _ = view._placement()
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert image.pixel(int(x) + 3, int(y) + 4) & 0xFFFFFF == checkerboard(3, 4)


def test_panel_saves_the_guest_screen_as_png(qtbot: Any, tmp_path: Any) -> None:
    from vmgui.ui.console.panel import ConsolePanel

    panel = ConsolePanel("vm")
    qtbot.addWidget(panel)
    panel.show_source(FakeSource(64, 48))  # type: ignore[arg-type]
    path = str(tmp_path / "shot.png")
    assert panel.save_screenshot(path)
    saved = QImage(path)
    assert (saved.width(), saved.height()) == (64, 48)
    assert saved.pixel(3, 4) & 0xFFFFFF == checkerboard(3, 4)
    assert not panel.save_screenshot(str(tmp_path / "missing-dir" / "x.png"))
    assert panel.status.text().startswith("Could not save the screenshot")


def test_resize_guest_to_window_asks_once_and_says_when_the_guest_does_not_follow(
    qtbot: Any,
) -> None:
    source = FakeSource(64, 48)
    source.can_resize = True
    asked: list[tuple[int, int]] = []
    source.request_size = lambda w, h: asked.append((w, h))  # type: ignore[method-assign]
    view = ConsoleView()
    qtbot.addWidget(view)
    view._resize_timer.setInterval(10)  # debounce and answer time, shortened for the test
    view._resize_answer.setInterval(50)
    view.attach(source)  # type: ignore[arg-type]
    view.resize(300, 200)
    view.show()
    messages: list[str] = []
    view.message.connect(messages.append)
    view.set_resize_guest(True)
    qtbot.waitUntil(lambda: asked == [(300, 200)])
    qtbot.waitUntil(lambda: bool(messages))
    assert messages == ["The guest did not change its resolution to 300x200."]
    # A guest that follows: no sentence.
    messages.clear()
    view.resize(320, 240)
    qtbot.waitUntil(lambda: asked[-1] == (320, 240))
    source.width, source.height, source.stride = 320, 240, 320 * 4
    source.data = bytearray(320 * 240 * 4)
    source.buffer = memoryview(source.data)
    assert source.listener is not None
    source.listener.resized(320, 240)
    qtbot.wait(100)
    assert messages == [] and view.image is not None and view.image.width() == 320


def test_a_guest_cursor_becomes_the_local_pointer_shape(qtbot: Any) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Shape:
        width: int
        height: int
        hot_x: int
        hot_y: int
        argb: bytes

    source = FakeSource()
    view = shown_view(qtbot, source)
    source.cursor = Shape(2, 2, 1, 1, b"\xff\x00\x00\xff" * 4)  # type: ignore[attr-defined]
    assert source.listener is not None
    source.listener.state_changed()  # type: ignore[attr-defined]
    assert view.cursor().shape() == Qt.CursorShape.BitmapCursor
    source.cursor = Shape(0, 0, 0, 0, b"")  # type: ignore[attr-defined]
    source.listener.state_changed()  # type: ignore[attr-defined]
    assert view.cursor().shape() == Qt.CursorShape.BlankCursor
