"""Icons drawn in code, so the app looks the same with or without an icon theme."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

from vmgui.model import ConnectionState, VmState

RESOURCES = Path(__file__).resolve().parents[2] / "resources"

STATE_COLORS = {
    VmState.RUNNING: "#2e9d44",
    VmState.BLOCKED: "#2e9d44",
    VmState.PAUSED: "#d49b00",
    VmState.PMSUSPENDED: "#d49b00",
    VmState.SHUTDOWN: "#d46a00",
    VmState.SHUTOFF: "#8a8f98",
    VmState.CRASHED: "#c62828",
    VmState.NOSTATE: "#8a8f98",
}
CONNECTION_COLORS = {
    ConnectionState.CONNECTED: "#2e9d44",
    ConnectionState.CONNECTING: "#d49b00",
    ConnectionState.DISCONNECTED: "#c62828",
}


def _canvas(size: int = 16) -> tuple[QPixmap, QPainter]:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pm, p


@cache
def state_icon(state: VmState) -> QIcon:
    """A glyph per state (play / pause bars / square / cross) so colour is not the only cue."""
    pm, p = _canvas()
    color = QColor(STATE_COLORS[state])
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    if state in (VmState.RUNNING, VmState.BLOCKED):
        p.drawPolygon(QPolygonF([QPointF(4, 2.5), QPointF(13.5, 8), QPointF(4, 13.5)]))
    elif state in (VmState.PAUSED, VmState.PMSUSPENDED):
        p.drawRoundedRect(QRectF(3, 2.5, 3.5, 11), 1, 1)
        p.drawRoundedRect(QRectF(9.5, 2.5, 3.5, 11), 1, 1)
    elif state == VmState.CRASHED:
        p.setPen(QPen(color, 2.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawLine(QPointF(4, 4), QPointF(12, 12))
        p.drawLine(QPointF(12, 4), QPointF(4, 12))
    else:
        p.drawRoundedRect(QRectF(3, 3, 10, 10), 2, 2)
    p.end()
    return QIcon(pm)


@cache
def connection_icon(state: ConnectionState) -> QIcon:
    pm, p = _canvas()
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(CONNECTION_COLORS[state]))
    p.drawEllipse(QRectF(4, 4, 8, 8))
    p.end()
    return QIcon(pm)


@cache
def computer_icon() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(QColor("#3b4252"), 1.4))
    p.setBrush(QColor("#88c0d0"))
    p.drawRoundedRect(QRectF(1.5, 2.5, 13, 9), 1.5, 1.5)
    path = QPainterPath()
    path.moveTo(5, 14)
    path.lineTo(11, 14)
    p.drawPath(path)
    p.drawLine(QPointF(8, 11.5), QPointF(8, 14))
    p.end()
    return QIcon(pm)


@cache
def app_icon() -> QIcon:
    svg = RESOURCES / "vmgui.svg"
    return QIcon(str(svg)) if svg.exists() else computer_icon()
