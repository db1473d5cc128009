"""SerialTerminalView: our own painter over a TerminalModel (pyte), repainting dirty lines only.

Output arriving in bursts is coalesced: the first change starts a short timer and the lines
pyte marked dirty are repainted when it fires (at most REFRESH_HZ times a second), so a guest
printing flat out cannot flood the GUI thread. The scroll bar walks the scrollback; typing,
pasting or new output while scrolled keeps the view where the user put it.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractScrollArea, QMenu, QWidget

from vmgui.console.terminal import TerminalModel, TerminalSession
from vmgui.ui.console.keys import terminal_bytes

log = logging.getLogger(__name__)

REFRESH_HZ = 60
_ANSI = {
    "black": "#000000", "red": "#cd3131", "green": "#0dbc79", "brown": "#e5e510",
    "yellow": "#e5e510", "blue": "#2472c8", "magenta": "#bc3fbc", "cyan": "#11a8cd",
    "white": "#e5e5e5", "brightblack": "#666666", "brightred": "#f14c4c",
    "brightgreen": "#23d18b", "brightbrown": "#f5f543", "brightyellow": "#f5f543",
    "brightblue": "#3b8eea", "brightmagenta": "#d670d6", "brightcyan": "#29b8db",
    "brightwhite": "#ffffff",
}  # fmt: skip
DEFAULT_FG, DEFAULT_BG = QColor("#d0d0d0"), QColor("#101010")


def _colour(name: str, default: QColor) -> QColor:
    if name == "default":
        return default
    if name in _ANSI:
        return QColor(_ANSI[name])
    if len(name) == 6:
        colour = QColor("#" + name)
        if colour.isValid():
            return colour
    return default


def _call(method: weakref.WeakMethod[Any], *args: Any) -> None:
    bound = method()
    if bound is not None:
        bound(*args)


class SerialTerminalView(QAbstractScrollArea):
    """A terminal on a TerminalSession; `ended` carries the session's closing sentence."""

    ended = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TerminalModel()
        self.session: TerminalSession | None = None
        self.repaints = 0  # paint events and the last one's area, for tests and benchmarks
        self.last_painted = QRect()
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        self.setFont(font)
        self._metrics()
        self._refresh = QTimer(self, singleShot=True, interval=1000 // REFRESH_HZ)
        self._refresh.timeout.connect(self._repaint_dirty)
        self._sel_start: tuple[int, int] | None = None  # (absolute line, column)
        self._sel_end: tuple[int, int] | None = None
        self.viewport().setCursor(Qt.CursorShape.IBeamCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.verticalScrollBar().valueChanged.connect(self._scrolled_to)
        self._update_scrollbar()

    def _scrolled_to(self, _value: int) -> None:
        self.viewport().update()

    def _metrics(self) -> None:
        fm = QFontMetrics(self.font())
        self.cell_w = max(1, fm.horizontalAdvance("M"))
        self.cell_h = max(1, fm.height())
        self._ascent = fm.ascent()

    # ---- the session ------------------------------------------------------------------------

    def attach(self, session: TerminalSession) -> None:
        """Show `session`'s model and send typing to it (the session calls us back)."""
        self.session = session
        self.model = session.model
        # Weak: a view <-> session cycle would leave the widget to the cycle collector, which
        # may destroy it off the GUI thread (see view._WeakListener).
        changed, ended = (
            weakref.WeakMethod(self.model_changed),
            weakref.WeakMethod(self._session_ended),
        )
        session.changed = lambda: _call(changed)
        session.on_end = lambda reason: _call(ended, reason)
        self._fit_model()
        self.viewport().update()

    def model_changed(self) -> None:
        if not self._refresh.isActive():
            self._refresh.start()

    def _session_ended(self, reason: str) -> None:
        self._repaint_dirty()
        self.ended.emit(reason)

    @property
    def scrolled(self) -> int:
        """Lines the view is scrolled back from the live screen."""
        bar = self.verticalScrollBar()
        return bar.maximum() - bar.value()

    def _update_scrollbar(self) -> None:
        """Follow new output at the bottom; when scrolled back, stay on the same lines."""
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum()
        bar.setRange(0, self.model.history_size)
        bar.setPageStep(self.model.lines)
        if at_bottom:
            bar.setValue(bar.maximum())

    def _repaint_dirty(self) -> None:
        dirty = self.model.take_dirty()
        self._update_scrollbar()
        if self.scrolled:
            self.viewport().update()  # scrolled back: the live lines moved under the view
            return
        for y in dirty:
            self.viewport().update(QRect(0, y * self.cell_h, self.viewport().width(), self.cell_h))

    # ---- painting ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self.viewport())
        painter.setFont(self.font())
        area = event.rect()
        painter.fillRect(area, DEFAULT_BG)
        model, back = self.model, self.scrolled
        first = max(0, area.top() // self.cell_h)
        last = min(model.lines - 1, area.bottom() // self.cell_h)
        for y in range(first, last + 1):
            self._paint_line(painter, y, model.line(y, back))
        cursor = model.cursor
        if cursor.visible and back == 0 and self.hasFocus():
            rect = QRect(cursor.x * self.cell_w, cursor.y * self.cell_h, self.cell_w, self.cell_h)
            painter.fillRect(rect, QColor(208, 208, 208, 160))
        painter.end()
        self.repaints += 1
        self.last_painted = area

    def _paint_line(self, painter: QPainter, y: int, line: dict) -> None:  # type: ignore[type-arg]
        top = y * self.cell_h
        absolute = self._absolute_line(y)
        runs: list[tuple[int, str, QColor, QColor, bool]] = []
        for x in range(self.model.columns):
            ch = line[x]
            fg, bg = _colour(ch.fg, DEFAULT_FG), _colour(ch.bg, DEFAULT_BG)
            if ch.reverse:
                fg, bg = bg, fg
            if self._selected(absolute, x):
                fg, bg = bg, QColor("#4a6fa5")
            if runs and runs[-1][2] == fg and runs[-1][3] == bg and runs[-1][4] == ch.bold:
                start, text, *_ = runs[-1]
                runs[-1] = (start, text + (ch.data or " "), fg, bg, ch.bold)
            else:
                runs.append((x, ch.data or " ", fg, bg, ch.bold))
        font = painter.font()
        for x, text, fg, bg, bold in runs:
            rect = QRect(x * self.cell_w, top, len(text) * self.cell_w, self.cell_h)
            if bg != DEFAULT_BG:
                painter.fillRect(rect, bg)
            if text.strip():
                font.setBold(bold)
                painter.setFont(font)
                painter.setPen(fg)
                for i, c in enumerate(text):  # one cell per character keeps columns aligned
                    if c != " ":
                        painter.drawText(QPoint((x + i) * self.cell_w, top + self._ascent), c)

    # ---- size -------------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_model()

    def _fit_model(self) -> None:
        vp = self.viewport()
        self.model.resize(max(1, vp.width() // self.cell_w), max(1, vp.height() // self.cell_h))
        self._update_scrollbar()
        vp.update()

    # ---- input ------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._is(event, Qt.Key.Key_C):
            self.copy()
            return
        if (
            self._is(event, Qt.Key.Key_V)
            or event.matches(QKeySequence.StandardKey.Paste)
            and (
                event.key() == Qt.Key.Key_Insert  # Shift+Insert; Ctrl+V belongs to the guest
            )
        ):
            self.paste()
            return
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and event.key() in (
            Qt.Key.Key_PageUp,
            Qt.Key.Key_PageDown,
        ):
            step = self.model.lines * (1 if event.key() == Qt.Key.Key_PageDown else -1)
            bar = self.verticalScrollBar()
            bar.setValue(bar.value() + step)
            return
        data = terminal_bytes(event, self.model.application_cursor_keys)
        if data:
            self.type_bytes(data)

    @staticmethod
    def _is(event: QKeyEvent, key: Qt.Key) -> bool:
        """Ctrl+Shift+C / Ctrl+Shift+V, as terminals do (plain Ctrl+C belongs to the guest)."""
        mods = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        return event.key() == key and event.modifiers() & mods == mods

    def type_bytes(self, data: bytes) -> None:
        if self.session is not None:
            self.session.send(data)
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())  # typing returns to the live screen

    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab is for the guest's shell

    # ---- selection, copy and paste ------------------------------------------------------------

    def _absolute_line(self, y: int) -> int:
        return self.model.history_size - self.scrolled + y

    def _cell_at(self, pos: QPoint) -> tuple[int, int]:
        y = max(0, min(self.model.lines - 1, pos.y() // self.cell_h))
        x = max(0, min(self.model.columns, round(pos.x() / self.cell_w)))
        return (self._absolute_line(y), x)

    def _ordered_selection(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        if self._sel_start is None or self._sel_end is None or self._sel_start == self._sel_end:
            return None
        a, b = sorted((self._sel_start, self._sel_end))
        return a, b

    def _selected(self, line: int, x: int) -> bool:
        sel = self._ordered_selection()
        return sel is not None and sel[0] <= (line, x) < sel[1]

    def selected_text(self) -> str:
        sel = self._ordered_selection()
        if sel is None:
            return ""
        (l0, x0), (l1, x1) = sel
        hist = self.model.history_size
        out = []
        for line in range(l0, l1 + 1):
            back = max(0, hist - line)  # scroll so that this line is row 0 or on screen
            y = line - hist + back
            row = self.model.line(y, back)
            start = x0 if line == l0 else 0
            end = x1 if line == l1 else self.model.columns
            out.append("".join(row[x].data for x in range(start, end)).rstrip())
        return "\n".join(out)

    def copy(self) -> None:
        text = self.selected_text()
        if text:
            QGuiApplication.clipboard().setText(text)

    def paste(self) -> None:
        text = QGuiApplication.clipboard().text()
        if text:
            self.type_bytes(text.replace("\r\n", "\r").replace("\n", "\r").encode())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._sel_start = self._sel_end = self._cell_at(event.position().toPoint())
            self.viewport().update()
        elif event.button() == Qt.MouseButton.MiddleButton:
            text = QGuiApplication.clipboard().text(QGuiApplication.clipboard().Mode.Selection)
            if text:
                self.type_bytes(text.replace("\n", "\r").encode())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self._sel_start is not None:
            self._sel_end = self._cell_at(event.position().toPoint())
            self.viewport().update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        text = self.selected_text()
        clipboard = QGuiApplication.clipboard()
        if text and clipboard.supportsSelection():
            clipboard.setText(text, clipboard.Mode.Selection)

    def wheelEvent(self, event: QWheelEvent) -> None:
        lines = -event.angleDelta().y() // 40
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + lines)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = QMenu(self)
        copy = menu.addAction("Copy", self.copy)
        copy.setEnabled(bool(self.selected_text()))
        menu.addAction("Paste", self.paste)
        menu.exec(event.globalPos())
