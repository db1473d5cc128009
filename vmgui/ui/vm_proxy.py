"""Filtering and sorting of the VM list: by connection (sidebar) and by text (filter box)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from vmgui.model import VmInfo
from vmgui.ui.vm_model import SORT_ROLE, STATS_COLUMNS, VM_ROLE, Column, VmTableModel


class VmFilterProxy(QSortFilterProxyModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._connection: str | None = None
        self._text = ""
        self._hosts: dict[str, str] = {}
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(VM_ROLE)  # stats ticks do not signal this role: no re-filtering
        self.setDynamicSortFilter(True)

    def setSourceModel(self, model: Any) -> None:  # Qt override
        old = self.sourceModel()
        if isinstance(old, VmTableModel):
            old.stats_changed.disconnect(self._on_stats_changed)
        super().setSourceModel(model)
        if isinstance(model, VmTableModel):
            model.stats_changed.connect(self._on_stats_changed)

    def _on_stats_changed(self, first: int, last: int) -> None:
        """Relay a stats tick: re-sort only when sorted by CPU, else just repaint those cells."""
        if self.sortColumn() == Column.CPU and self.dynamicSortFilter():
            self.invalidate()
            return
        rows = self.rowCount()
        if rows:
            self.dataChanged.emit(self.index(0, STATS_COLUMNS[0]),
                                  self.index(rows - 1, STATS_COLUMNS[-1]))

    def set_connection(self, connection: str | None) -> None:
        """None shows every connection's VMs side by side."""
        self._change_filter(lambda: setattr(self, "_connection", connection))

    def set_text(self, text: str) -> None:
        self._change_filter(lambda: setattr(self, "_text", text.strip().casefold()))

    def _change_filter(self, change: Callable[[], None]) -> None:
        # Qt >= 6.9 wants the change bracketed; older releases only have invalidateFilter().
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - Qt < 6.9
            change()
            self.invalidateFilter()

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        model = self.sourceModel()
        vm: VmInfo | None = model.data(model.index(source_row, 0, source_parent), VM_ROLE)
        if vm is None:
            return False
        if self._connection is not None and vm.connection != self._connection:
            return False
        if not self._text:
            return True
        # Matches the name, the virsh state word or the connection, like a search box should.
        return (
            self._text in vm.name.casefold()
            or self._text in vm.state.value
            or self._text in vm.connection.casefold()
        )
