"""Paints a VM's recent CPU % as a small filled line inside its list cell."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRectF
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from vmgui.ui.vm_model import HISTORY_ROLE

LINE_COLOR = QColor("#3f7fd9")
FILL_COLOR = QColor(63, 127, 217, 60)


class SparklineDelegate(QStyledItemDelegate):
    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        # Let the style draw the selection background and the "12 %" text first.
        super().paint(painter, option, index)
        values: list[float] = index.data(HISTORY_ROLE) or []
        if len(values) < 2:
            return
        rect: QRectF = QRectF(option.rect).adjusted(44, 3, -4, -3)  # type: ignore[attr-defined]
        if rect.width() < 10 or rect.height() < 4:
            return
        step = rect.width() / (len(values) - 1)
        points = [
            QPointF(rect.left() + i * step, rect.bottom() - rect.height() * min(100.0, v) / 100.0)
            for i, v in enumerate(values)
        ]
        line = QPainterPath(points[0])
        for pt in points[1:]:
            line.lineTo(pt)
        area = QPainterPath(line)
        area.lineTo(rect.right(), rect.bottom())
        area.lineTo(rect.left(), rect.bottom())
        area.closeSubpath()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        pen_color = (
            option.palette.color(QPalette.ColorRole.HighlightedText)  # type: ignore[attr-defined]
            if selected
            else LINE_COLOR
        )
        painter.fillPath(area, FILL_COLOR)
        painter.setPen(QPen(pen_color, 1.3))
        painter.drawPath(line)
        painter.restore()

    def displayText(self, value: Any, locale: Any) -> str:
        return str(value) if value else ""
