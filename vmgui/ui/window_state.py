"""The main window's size, splitters and the list's sort order, kept between runs.

Read from and written to `Settings` only (the one settings accessor saves them); a value that
does not fit the window any more (a column that is gone, a bad geometry) is ignored.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QMainWindow, QSplitter, QTableView

from vmgui.settings import Settings
from vmgui.ui.vm_model import COLUMN_KEYS, Column

_COLUMN_BY_KEY = {key: col for col, key in COLUMN_KEYS.items()}


def restore(
    window: QMainWindow, splitters: dict[str, QSplitter], table: QTableView, settings: Settings
) -> None:
    if settings.window_geometry:
        window.restoreGeometry(QByteArray.fromHex(settings.window_geometry.encode()))
    for name, splitter in splitters.items():
        sizes = settings.splitter_sizes.get(name)
        if sizes and len(sizes) == splitter.count():
            splitter.setSizes(sizes)
    column = _COLUMN_BY_KEY.get(settings.sort_column, Column.NAME)
    order = Qt.SortOrder.DescendingOrder if settings.sort_descending else Qt.SortOrder.AscendingOrder
    table.sortByColumn(column, order)


def remember(
    window: QMainWindow, splitters: dict[str, QSplitter], table: QTableView, settings: Settings
) -> None:
    """Copy the window's state into `settings` (the caller saves them)."""
    settings.window_geometry = bytes(window.saveGeometry().toHex().data()).decode()
    settings.splitter_sizes = {name: list(s.sizes()) for name, s in splitters.items()}
    header = table.horizontalHeader()
    section = header.sortIndicatorSection()
    settings.sort_column = COLUMN_KEYS.get(Column(section), "name") if 0 <= section < len(
        Column) else "name"
    settings.sort_descending = header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
