"""Graphs and sparklines paint what they are given (checked on rendered pixels)."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem, QTableView

from vmgui.model import VmInfo, VmRates, VmState
from vmgui.ui.formatting import format_bytes, format_percent, format_rate
from vmgui.ui.graphs import SERIES_COLORS, GraphWidget, Series
from vmgui.ui.sparkline import LINE_COLOR, SparklineDelegate
from vmgui.ui.vm_model import Column, VmTableModel


def _count(image: QImage, color: str, tolerance: int = 40) -> int:
    want = QColor(color)
    n = 0
    for y in range(image.height()):
        for x in range(image.width()):
            c = QColor(image.pixel(x, y))
            if (abs(c.red() - want.red()) + abs(c.green() - want.green())
                    + abs(c.blue() - want.blue())) < tolerance:
                n += 1
    return n


def test_formatting() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"
    assert format_rate(2 * 1024**2) == "2.0 MiB/s"
    assert format_percent(12.4) == "12 %"


def test_graph_paints_both_series_and_scales(qapp: object) -> None:
    g = GraphWidget("Disk I/O", format_rate)
    g.resize(320, 160)
    g.set_series([Series("read", [0, 1000, 3000, 2000]), Series("write", [500, 500, 500, 500])])
    assert g.y_max() == 5000  # rounded up to a 1/2/5 step above the 3000 peak
    image = g.grab().toImage()
    assert _count(image, SERIES_COLORS[0]) > 30
    assert _count(image, SERIES_COLORS[1]) > 30
    g.set_series([])
    assert _count(g.grab().toImage(), SERIES_COLORS[0]) < 5


def test_sparkline_draws_cpu_history(qapp: object) -> None:
    model = VmTableModel()
    model.upsert([VmInfo("c", "a", "a", VmState.RUNNING)])
    for t, cpu in enumerate([10, 80, 20, 90, 50]):
        model.apply_rates("c", [VmRates("a", float(t), cpu_percent=cpu)])
    view = QTableView()
    view.setModel(model)
    delegate = SparklineDelegate(view)
    image = QImage(200, 26, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 200, 26)  # type: ignore[attr-defined]
    delegate.paint(painter, option, model.index(0, Column.CPU))
    painter.end()
    assert _count(image, LINE_COLOR.name(), tolerance=80) > 20
