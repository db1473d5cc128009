"""Live line graphs painted with QPainter (no QtCharts: it would pull PySide6-Addons, ~100 MB,
for four small line plots)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SERIES_COLORS = ("#3f7fd9", "#e06c2c", "#2e9d44", "#9c4fd6")


@dataclass
class Series:
    label: str
    values: Sequence[float]


class GraphWidget(QWidget):
    """One titled plot of one or two series; the y scale grows to fit unless `fixed_max` is set."""

    def __init__(
        self,
        title: str,
        formatter: Callable[[float], str],
        fixed_max: float | None = None,
        capacity: int = 60,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self._format = formatter
        self._fixed_max = fixed_max
        self._capacity = capacity
        self._series: list[Series] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 110)

    def sizeHint(self) -> QSize:
        return QSize(320, 150)

    def set_series(self, series: list[Series]) -> None:
        self._series = series
        self.update()

    def set_fixed_max(self, value: float | None) -> None:
        """A known ceiling (e.g. the VM's memory size) reads better than an auto scale."""
        self._fixed_max = value if value and value > 0 else None
        self.update()

    def series(self) -> list[Series]:
        return list(self._series)

    def y_max(self) -> float:
        if self._fixed_max is not None:
            return self._fixed_max
        peak = max((max(s.values, default=0.0) for s in self._series), default=0.0)
        # Round up to 1/2/5 x 10^n so the scale does not jitter with every sample.
        scale = 1.0
        while scale * 10 <= peak:
            scale *= 10
        for m in (1, 2, 5, 10):
            if peak <= m * scale:
                return m * scale
        return peak

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        fm = p.fontMetrics()
        line_h = fm.height()
        title_font = QFont(p.font())
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(text)
        p.drawText(QPointF(8, 4 + fm.ascent()), self.title)
        p.setFont(self.font())
        # Legend with the latest value of each series, right-aligned on the title line.
        x = self.width() - 8.0
        for i, s in reversed(list(enumerate(self._series))):
            latest = s.values[-1] if s.values else 0.0
            label = f"{s.label} {self._format(latest)}" if s.label else self._format(latest)
            w = fm.horizontalAdvance(label)
            x -= w
            p.setPen(QColor(SERIES_COLORS[i % len(SERIES_COLORS)]))
            p.drawText(QPointF(x, 4 + fm.ascent()), label)
            x -= 14
        plot = QRectF(8, 8 + line_h, self.width() - 16, self.height() - 14 - 2 * line_h)
        if plot.height() < 10:
            p.end()
            return
        grid = QColor(text)
        grid.setAlpha(40)
        p.setPen(QPen(grid, 1))
        for k in range(5):
            y = plot.top() + plot.height() * k / 4
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        p.drawRect(plot)
        top = self.y_max()
        p.setPen(text)
        p.drawText(QPointF(plot.left(), plot.bottom() + fm.ascent() + 2), f"max {self._format(top)}")
        if top > 0:
            step = plot.width() / max(1, self._capacity - 1)
            for i, s in enumerate(self._series):
                values = list(s.values)[-self._capacity :]
                if len(values) < 2:
                    continue
                x0 = plot.right() - (len(values) - 1) * step
                path = QPainterPath()
                for j, v in enumerate(values):
                    pt = QPointF(x0 + j * step, plot.bottom() - plot.height() * min(v, top) / top)
                    if j == 0:
                        path.moveTo(pt)
                    else:
                        path.lineTo(pt)
                color = QColor(SERIES_COLORS[i % len(SERIES_COLORS)])
                p.setPen(QPen(color, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
                p.drawPath(path)
        p.end()
