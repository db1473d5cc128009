"""The VM page: filter box, the VM table (sparklines in the CPU column) and the details below.

It presents the shared VM model through the filter proxy and knows which row is selected;
acting on the selection is the actions' job (vmgui.ui.actions).
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from vmgui.ui.connections import ConnectionManager
from vmgui.ui.details import DetailsView
from vmgui.ui.sparkline import SparklineDelegate
from vmgui.ui.vm_model import COLUMN_KEYS, KEY_ROLE, Column, VmKey, VmTableModel
from vmgui.ui.vm_proxy import VmFilterProxy

ROW_HEIGHT = 26
MIN_VISIBLE_ROWS = 4  # a small window squeezes the details, not the list down to one row
EMPTY_HINT = (
    "No libvirt connections yet. Add one with File → Add Connection… (or + below the "
    "sidebar), for example qemu:///system for this computer's libvirt, or "
    "qemu+ssh://user@host/system. This computer's own VMs are under This computer (built-in)."
)
# Sum with Host and Connection (100 each) fits the default window without a horizontal scroll bar.
COLUMN_WIDTHS = ((Column.NAME, 200), (Column.STATE, 120), (Column.CPU, 140), (Column.MEMORY, 160))


class FilterBox(QLineEdit):
    """The list's filter field: Escape clears it (as in a browser's find bar)."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            event.accept()
            return
        super().keyPressEvent(event)


class VmPage(QWidget):
    #: The selected VM changed (its VmKey, or None).
    selection_changed = Signal(object)
    #: A context menu was asked for at this global position.
    menu_requested = Signal(QPoint)
    #: A row was activated (double-click or Enter): open that VM's console.
    open_requested = Signal(object)

    def __init__(
        self,
        model: VmTableModel,
        proxy: VmFilterProxy,
        manager: ConnectionManager,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._proxy = proxy
        self.filter_box = FilterBox()
        self.filter_box.setPlaceholderText("Filter by name, state or connection (Ctrl+F)")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.textChanged.connect(proxy.set_text)
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setStyleSheet("color: gray; padding: 12px")
        self.empty_hint.hide()
        self.table = QTableView()
        self.table.setModel(proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        vh = self.table.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row size queries
        vh.setDefaultSectionSize(ROW_HEIGHT)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in COLUMN_WIDTHS:
            self.table.setColumnWidth(col, width)
        self.sparkline = SparklineDelegate(self.table)
        self.table.setItemDelegateForColumn(Column.CPU, self.sparkline)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(
            lambda pos: self.menu_requested.emit(self.table.viewport().mapToGlobal(pos))
        )
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.activated.connect(lambda index: self.open_requested.emit(index.data(KEY_ROLE)))
        self.details = DetailsView(model, manager)
        header_height = self.table.horizontalHeader().sizeHint().height()
        self.table.setMinimumHeight(header_height + MIN_VISIBLE_ROWS * ROW_HEIGHT + 4)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_box)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.splitter)

    def selected_key(self) -> VmKey | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        key: VmKey = rows[0].data(KEY_ROLE)
        return key

    def select_vm(self, key: VmKey) -> bool:
        row = self._model.row_of(key)
        if row < 0:
            return False
        index = self._proxy.mapFromSource(self._model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectRow(index.row())
        return True

    def show_columns(self, visible: list[str]) -> None:
        for col, key in COLUMN_KEYS.items():
            self.table.setColumnHidden(col, key not in visible)

    def _on_selection_changed(self, *_: object) -> None:
        key = self.selected_key()
        self.details.show_vm(key)
        self.selection_changed.emit(key)
