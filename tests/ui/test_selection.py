"""The selection after rows go (same connection's neighbour, or nothing) and come (new VMs)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTableView

from vmgui.model import VmInfo, VmState
from vmgui.ui.selection import SelectionKeeper
from vmgui.ui.vm_model import KEY_ROLE, Column, VmKey, VmTableModel
from vmgui.ui.vm_proxy import VmFilterProxy

A, B = "test:///a", "test:///b"


def _vm(conn: str, name: str) -> VmInfo:
    return VmInfo(conn, f"{conn}-{name}", name, VmState.SHUTOFF)


def test_selection_stays_with_the_connection_and_follows_new_rows(qtbot: Any) -> None:
    model = VmTableModel()
    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(proxy)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setSortingEnabled(True)
    table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)

    def selected() -> VmKey | None:
        rows = table.selectionModel().selectedRows()
        return rows[0].data(KEY_ROLE) if rows else None

    def select(key: VmKey) -> bool:
        index = proxy.mapFromSource(model.index(model.row_of(key), 0))
        if model.row_of(key) < 0 or not index.isValid():
            return False
        table.selectRow(index.row())
        return True

    keeper = SelectionKeeper(model, proxy, selected, select, table.clearSelection)
    # names interleave the connections: a1 b2 a3 b4
    model.upsert([_vm(A, "a1"), _vm(B, "b2"), _vm(A, "a3"), _vm(B, "b4")])
    assert select((A, f"{A}-a1"))
    model.remove([(A, f"{A}-a1")])  # the next row is b2 (another connection): not that one
    assert selected() == (A, f"{A}-a3")
    model.remove([(A, f"{A}-a3")])  # no VM of A left: nothing
    assert selected() is None

    keeper.select_when_listed((A, f"{A}-new"))  # created, not listed yet
    assert selected() is None
    model.upsert([_vm(A, "new")])
    assert selected() == (A, f"{A}-new")
