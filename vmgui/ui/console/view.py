"""ConsoleView: draws a FramebufferSource and sends keyboard and pointer input back to it.

The source's pixels are wrapped in a QImage without a copy and only damaged rectangles are
repainted, so a still guest screen costs nothing. Geometry is computed in device pixels: at 1:1
one guest pixel is one device pixel even at fractional scale factors (1.25, 1.5), and the image
sits on whole device pixels so nothing is resampled (no blur). Fit scales with the aspect kept.

Keyboard: a click captures it (grabKeyboard), `hint()` says so for the status line under the
console (not over the guest's pixels), and Ctrl+Alt always releases it.
Keys go as physical positions (see keys.py); auto-repeat sends repeated presses, as a keyboard
does; keys still held when capture ends are released in the guest so none stays stuck.
"""

from __future__ import annotations

import enum
import logging
import math
import weakref
from typing import Any

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from vmgui.console.source import FramebufferSource, Rect
from vmgui.ui.console.keys import PhysicalKey, key_for_qcode, physical_key

log = logging.getLogger(__name__)

RELEASE_HINT = "Keyboard captured: press Ctrl+Alt to release it"
CAPTURE_HINT = "Click to type into the virtual machine"
#: Ask the guest for a new resolution this long after the last window resize.
RESIZE_DEBOUNCE_MS = 300
#: A guest that has not followed a size request by then is said not to follow.
RESIZE_ANSWER_MS = 3000
#: RFB pointer mask bits for Qt's buttons and the wheel.
_BUTTON_BITS = {
    Qt.MouseButton.LeftButton: 1,
    Qt.MouseButton.MiddleButton: 2,
    Qt.MouseButton.RightButton: 4,
}
_WHEEL_UP, _WHEEL_DOWN = 8, 16
_RELEASE_MODIFIERS = frozenset({"ctrl", "ctrl_r", "alt", "alt_r"})


class _WeakListener:
    """Forwards a source's callbacks to a view without keeping the view alive.

    A strong view <-> source cycle would leave the widget to Python's cycle collector, which
    may run on any thread, and a QWidget destroyed off the GUI thread leaves live timers behind
    (a later crash). With this proxy the view dies when its last owner lets go, on that thread.
    """

    def __init__(self, view: ConsoleView) -> None:
        self._view = weakref.ref(view)

    def damaged(self, rects: list[Rect]) -> None:
        view = self._view()
        if view is not None:
            view.damaged(rects)

    def resized(self, width: int, height: int) -> None:
        view = self._view()
        if view is not None:
            view.resized(width, height)

    def closed(self, reason: str) -> None:
        view = self._view()
        if view is not None:
            view.closed(reason)

    def state_changed(self) -> None:
        view = self._view()
        if view is not None:
            view.state_changed()


class Scale(enum.Enum):
    FIT = "fit"
    ONE_TO_ONE = "1:1"


class ConsoleView(QWidget):
    """The guest's screen. `attach(source)` after the source started; it becomes its listener."""

    #: Keyboard capture started (True) or ended (False).
    captureChanged = Signal(bool)
    #: The first frame was painted (for --screenshot and the "time to first frame" figure).
    firstFramePainted = Signal()
    #: A sentence for the user (the source ended, the guest would not resize...).
    message = Signal(str)
    #: The source ended; the argument is its sentence ("" for a normal close).
    sourceClosed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: FramebufferSource | None = None
        self.image: QImage | None = None
        self.scale = Scale.FIT
        self.resize_guest = False
        self.captured = False
        self.painted_frames = 0  # paint events and the last one's area, for tests and benchmarks
        self.last_painted = QRect()
        self._held: dict[int, PhysicalKey] = {}  # scancode -> key, pressed in the guest
        self._buttons = 0
        self._cursor_key: object = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 120)
        self._resize_timer = QTimer(self, singleShot=True, interval=RESIZE_DEBOUNCE_MS)
        self._resize_timer.timeout.connect(self._request_guest_size)
        self._resize_answer = QTimer(self, singleShot=True, interval=RESIZE_ANSWER_MS)
        self._resize_answer.timeout.connect(self._guest_did_not_resize)
        self._asked_size: tuple[int, int] | None = None

    # ---- the source -------------------------------------------------------------------------

    def attach(self, source: FramebufferSource | None) -> None:
        if self.source is not None:
            self.release_keyboard()
            self.source.set_listener(None)
        self.source = source
        self.image = None
        if source is not None:
            source.set_listener(_WeakListener(self))
            self._wrap_buffer()
        self.updateGeometry()
        self.update()

    def _wrap_buffer(self) -> None:
        src = self.source
        if src is None or src.buffer is None or src.width <= 0 or src.height <= 0:
            self.image = None
            return
        # No copy: the QImage reads the source's (shared) pixels directly.
        self.image = QImage(
            src.buffer, src.width, src.height, src.stride, QImage.Format.Format_RGB32
        )

    def damaged(self, rects: list[Rect]) -> None:
        if self.image is None:
            return
        for r in rects:
            self.update(self._widget_rect(r))

    def resized(self, width: int, height: int) -> None:
        self.image = None  # the old buffer may be gone already
        self._wrap_buffer()
        if self._asked_size == (width, height):
            self._resize_answer.stop()
            self._asked_size = None
        self.updateGeometry()
        self.update()

    def closed(self, reason: str) -> None:
        self.image = None  # before the source unmaps the pixels
        self.release_keyboard()
        self.update()
        self.sourceClosed.emit(reason)
        if reason:
            self.message.emit(reason)

    def state_changed(self) -> None:
        """Optional listener call: cursor shape, pointer mode or resize answer changed."""
        problem = getattr(self.source, "resize_problem", "")
        if problem and self._asked_size is not None:
            self._resize_answer.stop()
            self._asked_size = None
            self.message.emit(problem)
        self._update_cursor()

    # ---- geometry (device pixels) -----------------------------------------------------------

    def _guest_size(self) -> tuple[int, int]:
        if self.image is None:
            return (0, 0)
        return (self.image.width(), self.image.height())

    def _placement(self) -> tuple[float, float, float]:
        """(x, y, scale) of the guest image in *device* pixels of this widget."""
        gw, gh = self._guest_size()
        dpr = self.devicePixelRatioF()
        ww, wh = self.width() * dpr, self.height() * dpr
        if gw == 0 or gh == 0:
            return (0.0, 0.0, 1.0)
        k = 1.0 if self.scale is Scale.ONE_TO_ONE else min(ww / gw, wh / gh)
        # Whole device pixels: at 1:1 the image is never resampled.
        x = math.floor(max(0.0, (ww - gw * k) / 2))
        y = math.floor(max(0.0, (wh - gh * k) / 2))
        return (float(x), float(y), k)

    def _widget_rect(self, r: Rect) -> QRect:
        """The widget (logical) rectangle covering guest rectangle `r`, rounded outwards."""
        x, y, k = self._placement()
        dpr = self.devicePixelRatioF()
        margin = 0 if k == 1.0 else 1  # smooth scaling reads neighbours
        left = math.floor((x + r.x * k) / dpr) - margin
        top = math.floor((y + r.y * k) / dpr) - margin
        right = math.ceil((x + (r.x + r.w) * k) / dpr) + margin
        bottom = math.ceil((y + (r.y + r.h) * k) / dpr) + margin
        return QRect(left, top, right - left, bottom - top)

    def guest_position(self, pos: QPointF) -> tuple[int, int] | None:
        """Guest pixel under widget position `pos`, None outside the image."""
        gw, gh = self._guest_size()
        if not gw:
            return None
        x, y, k = self._placement()
        dpr = self.devicePixelRatioF()
        gx = math.floor((pos.x() * dpr - x) / k)
        gy = math.floor((pos.y() * dpr - y) / k)
        if 0 <= gx < gw and 0 <= gy < gh:
            return (gx, gy)
        return None

    def sizeHint(self) -> QSize:
        gw, gh = self._guest_size()
        if not gw:
            return QSize(640, 480)
        dpr = self.devicePixelRatioF()
        return QSize(math.ceil(gw / dpr), math.ceil(gh / dpr))

    def set_scale(self, scale: Scale) -> None:
        self.scale = scale
        self.updateGeometry()
        self.update()

    # ---- painting ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        self.last_painted = event.rect()
        painter = QPainter(self)
        dpr = self.devicePixelRatioF()
        # Work in device pixels so placement and 1:1 are exact at any scale factor.
        painter.scale(1 / dpr, 1 / dpr)
        exposed = QRectF(event.rect()).adjusted(0, 0, 0, 0)
        exposed = QRectF(
            exposed.x() * dpr, exposed.y() * dpr, exposed.width() * dpr, exposed.height() * dpr
        )
        image = self.image
        if image is None:
            painter.fillRect(exposed, QColor(0, 0, 0))
            return
        x, y, k = self._placement()
        target = QRectF(x, y, image.width() * k, image.height() * k)
        visible = exposed.intersected(target)
        # Background only where the exposed area is outside the image.
        if visible != exposed:
            painter.fillRect(exposed, QColor(0, 0, 0))
        if visible.isEmpty():
            return
        if k != 1.0:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        source = QRectF(
            (visible.x() - x) / k, (visible.y() - y) / k, visible.width() / k, visible.height() / k
        )
        painter.drawImage(visible, image, source)
        self._draw_cursor(painter)
        painter.end()
        self.painted_frames += 1
        if self.painted_frames == 1:
            self.firstFramePainted.emit()

    def _draw_cursor(self, painter: QPainter) -> None:
        """Nothing: a guest cursor is shown as the local pointer shape (see _update_cursor)."""

    def _update_cursor(self) -> None:
        shape = getattr(self.source, "cursor", None)
        if shape is self._cursor_key:
            return
        self._cursor_key = shape
        if shape is None:
            self.unsetCursor()
            return
        if not shape.width or not shape.height:
            self.setCursor(Qt.CursorShape.BlankCursor)
            return
        img = QImage(
            shape.argb, shape.width, shape.height, shape.width * 4, QImage.Format.Format_ARGB32
        )
        pixmap = QPixmap.fromImage(img.copy())
        # The guest's cursor pixels are guest pixels: show them at the console's scale.
        _x, _y, k = self._placement()
        dpr = self.devicePixelRatioF()
        pixmap.setDevicePixelRatio(dpr / k if k else dpr)
        self.setCursor(QCursor(pixmap, round(shape.hot_x * k / dpr), round(shape.hot_y * k / dpr)))

    # ---- keyboard ---------------------------------------------------------------------------

    def capture_keyboard(self) -> None:
        if self.captured or self.source is None:
            return
        self.captured = True
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.grabKeyboard()
        self.captureChanged.emit(True)

    def release_keyboard(self) -> None:
        self._release_held_keys()
        if not self.captured:
            return
        self.captured = False
        self.releaseKeyboard()
        self.captureChanged.emit(False)

    def _release_held_keys(self) -> None:
        held, self._held = self._held, {}
        if self.source is not None:
            for key in reversed(list(held.values())):
                self.source.send_key(key.scancode, key.keysym, False)

    def event(self, event: Any) -> bool:
        # While captured, Tab and Shift+Tab belong to the guest, not to focus navigation.
        if self.captured and event.type() == event.Type.ShortcutOverride:
            event.accept()  # the app's shortcuts must not steal keys meant for the guest
            return True
        if self.captured and event.type() == event.Type.KeyPress:
            self.keyPressEvent(event)
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.captured or self.source is None:
            super().keyPressEvent(event)
            return
        key = physical_key(event)
        if key is None:
            return
        if key.qcode in _RELEASE_MODIFIERS and self._release_combination(key):
            self.release_keyboard()
            return
        self._held[key.scancode] = key
        self.source.send_key(key.scancode, key.keysym, True)

    def _release_combination(self, key: PhysicalKey) -> bool:
        """Ctrl+Alt: this key plus a held key of the other kind."""
        want = ("alt", "alt_r") if key.qcode.startswith("ctrl") else ("ctrl", "ctrl_r")
        return any(k.qcode in want for k in self._held.values())

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.isAutoRepeat():
            return  # a keyboard repeats presses only; the release comes once, at the end
        key = physical_key(event)
        if key is None or key.scancode not in self._held:
            return
        del self._held[key.scancode]
        if self.source is not None:
            self.source.send_key(key.scancode, key.keysym, False)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self._release_held_keys()
        super().focusOutEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:
        return False if self.captured else super().focusNextPrevChild(next)

    def send_keys(self, qcodes: list[str]) -> None:
        """Press the keys in order, then release them in reverse (Send Key menu)."""
        if self.source is None:
            return
        keys = [key_for_qcode(q) for q in qcodes]
        for k in keys:
            self.source.send_key(k.scancode, k.keysym, True)
        for k in reversed(keys):
            self.source.send_key(k.scancode, k.keysym, False)

    # ---- pointer ----------------------------------------------------------------------------

    def _pointer(self, event: QMouseEvent | QWheelEvent, extra: int = 0) -> None:
        src = self.source
        if src is None or not src.absolute_pointer:
            return
        at = self.guest_position(event.position())
        if at is not None:
            src.send_pointer(at[0], at[1], self._buttons | extra)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self.captured:
            self.capture_keyboard()
        self._buttons |= _BUTTON_BITS.get(event.button(), 0)
        self._pointer(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._buttons &= ~_BUTTON_BITS.get(event.button(), 0)
        self._pointer(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._pointer(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        dy = event.angleDelta().y()
        if dy:
            self._pointer(event, _WHEEL_UP if dy > 0 else _WHEEL_DOWN)
            self._pointer(event)

    # ---- guest resolution follows the window --------------------------------------------------

    def set_resize_guest(self, on: bool) -> None:
        self.resize_guest = on
        if on:
            self._resize_timer.start()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.resize_guest:
            self._resize_timer.start()

    def _request_guest_size(self) -> None:
        src = self.source
        if src is None or not src.can_resize or not self.resize_guest:
            return
        dpr = self.devicePixelRatioF()
        size = (round(self.width() * dpr), round(self.height() * dpr))
        if size == self._guest_size():
            return
        self._asked_size = size
        src.request_size(*size)
        self._resize_answer.start()

    def _guest_did_not_resize(self) -> None:
        if self._asked_size is not None:
            w, h = self._asked_size
            self._asked_size = None
            self.message.emit(f"The guest did not change its resolution to {w}x{h}.")

    def hint(self) -> str:
        """What the keyboard does now, for the status line under the console."""
        return RELEASE_HINT if self.captured else CAPTURE_HINT

    # ---- screenshots --------------------------------------------------------------------------

    def screenshot(self) -> QImage | None:
        """A copy of the guest's screen (guest pixels, whatever the scale)."""
        if self.image is None:
            return None
        return self.image.copy()  # a deep copy: the pixels stay valid after the source ends
