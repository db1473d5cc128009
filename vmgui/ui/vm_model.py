"""The VM list as a Qt table model, fed by backend events and stats ticks (never by polling).

Rows are keyed by (connection URI, VM UUID). Updates arrive in batches and the model emits the
smallest signals that describe them: one `beginInsertRows` per batch of new VMs, `dataChanged`
only for the cells whose value changed, and one `stats_changed` per stats tick. That is what keeps
1,000 rows cheap: views repaint only the visible cells.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from vmgui.backends.base import is_builtin
from vmgui.model import VmInfo, VmRates, VmState
from vmgui.ui.formatting import format_kib, format_percent
from vmgui.ui.icons import state_icon
from vmgui.ui.rates_history import RatesHistory

HISTORY_LENGTH = 60  # samples kept per VM: a minute at 1 s, ten at 10 s

VmKey = tuple[str, str]  # (connection URI, vm_id)
AnyIndex = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    NAME = 0
    STATE = 1
    CPU = 2
    MEMORY = 3
    HOST = 4
    CONNECTION = 5


COLUMN_KEYS = {
    Column.NAME: "name",
    Column.STATE: "state",
    Column.CPU: "cpu",
    Column.MEMORY: "memory",
    Column.HOST: "host",
    Column.CONNECTION: "connection",
}
COLUMN_TITLES = {
    Column.NAME: "Name",
    Column.STATE: "State",
    Column.CPU: "CPU usage",
    Column.MEMORY: "Memory",
    Column.HOST: "Host",
    Column.CONNECTION: "Connection",
}

# Roles beyond Qt's: the delegate, the proxy and the details view read these.
VM_ROLE = Qt.ItemDataRole.UserRole + 1  # VmInfo
KEY_ROLE = Qt.ItemDataRole.UserRole + 2  # VmKey
HISTORY_ROLE = Qt.ItemDataRole.UserRole + 3  # list[float] of CPU %
SORT_ROLE = Qt.ItemDataRole.UserRole + 4  # a value that sorts naturally

_STATE_ORDER = {s: i for i, s in enumerate(VmState)}
STALE_STATE = "unknown (disconnected)"
STALE_COLOUR = "#80868b"
_LIVE = object()  # _stale_data's "show the live value" marker
STATS_COLUMNS = (Column.CPU, Column.MEMORY)


@dataclass
class VmRow:
    info: VmInfo
    history: RatesHistory = field(default_factory=lambda: RatesHistory(HISTORY_LENGTH))

    @property
    def latest(self) -> VmRates | None:
        return self.history.latest


def connection_label(uri: str) -> str:
    """How the Connection column names a connection: its URI, or "This computer"."""
    return "This computer" if is_builtin(uri) else uri


def _changed_columns(old: VmInfo, new: VmInfo) -> list[Column]:
    cols: list[Column] = []
    if old.name != new.name:
        cols.append(Column.NAME)
    if old.state != new.state or old.reason != new.reason:
        cols.append(Column.STATE)
    if old.memory_kib != new.memory_kib:
        cols.append(Column.MEMORY)
    return cols


class VmTableModel(QAbstractTableModel):
    # A stats tick changed the CPU and memory cells of source rows first..last. Not a
    # dataChanged: QSortFilterProxyModel would re-filter every row and compare each with its
    # neighbours (~5 Python data() calls per row, 80 ms for 1,000 rows) although a tick never
    # changes what the filter or the name/state/host sort looks at. VmFilterProxy relays it.
    stats_changed = Signal(int, int)
    # Before any row of a remove() goes (views have not reacted yet) and after all went:
    # the keys concerned. The selection logic needs the "before": by the time rowsAboutToBeRemoved
    # reaches a slot connected after the proxy's, the view has already moved its selection.
    removing = Signal(list)
    removed = Signal(list)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[VmRow] = []
        self._index: dict[VmKey, int] = {}
        self._hosts: dict[str, str] = {}
        self._stale: set[str] = set()  # connections whose rows are last known, not live

    # ---- reading ---------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMN_TITLES[Column(section)]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        info = row.info
        col = Column(index.column())
        if info.connection in self._stale:
            stale = self._stale_data(info, col, role)
            if stale is not _LIVE:
                return stale
        if role == Qt.ItemDataRole.DisplayRole:
            if col == Column.NAME:
                return info.name
            if col == Column.STATE:
                return info.state.value
            if col == Column.CPU:
                latest = row.latest
                return format_percent(latest.cpu_percent) if latest and info.state.is_active else ""
            if col == Column.MEMORY:
                return self._memory_text(row)
            if col == Column.HOST:
                return self._hosts.get(info.connection, info.connection)
            if col == Column.CONNECTION:
                return connection_label(info.connection)
        elif role == Qt.ItemDataRole.DecorationRole and col == Column.STATE:
            return state_icon(info.state)
        elif role == Qt.ItemDataRole.ToolTipRole and col == Column.STATE and info.reason:
            return f"{info.state.value} ({info.reason})"
        elif role == Qt.ItemDataRole.ToolTipRole and col in (Column.HOST, Column.CONNECTION):
            return info.connection
        elif role == Qt.ItemDataRole.ToolTipRole and col == Column.MEMORY:
            return self._memory_tip(row)
        elif role == VM_ROLE:
            return info
        elif role == KEY_ROLE:
            return (info.connection, info.vm_id)
        elif role == HISTORY_ROLE:
            return row.history.cpu() if info.state.is_active else []
        elif role == SORT_ROLE:
            return self._sort_value(row, col)
        return None

    @staticmethod
    def _stale_data(info: VmInfo, col: Column, role: int) -> Any:
        """What a row of a disconnected connection shows instead of live figures."""
        if role == Qt.ItemDataRole.DisplayRole and col == Column.STATE:
            return STALE_STATE
        if role == Qt.ItemDataRole.DisplayRole and col == Column.CPU:
            return ""
        if role == HISTORY_ROLE:
            return []
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor(STALE_COLOUR))
        if role == Qt.ItemDataRole.ToolTipRole and col == Column.STATE:
            return f"Not connected to {info.connection}: last known state {info.state.value}."
        if role == Qt.ItemDataRole.DecorationRole and col == Column.STATE:
            return None
        return _LIVE

    def set_stale(self, connection: str, stale: bool) -> None:
        """Mark a connection's rows as last-known (lost connection) or live again."""
        if stale == (connection in self._stale):
            return
        if stale:
            self._stale.add(connection)
        else:
            self._stale.discard(connection)
        rows = [i for i, r in enumerate(self._rows) if r.info.connection == connection]
        if rows:
            self._emit_cells(rows, Column.NAME, Column(len(Column) - 1))

    def is_stale(self, key: VmKey) -> bool:
        return key[0] in self._stale

    def _memory_text(self, row: VmRow) -> str:
        latest = row.latest
        if latest and row.info.state.is_active and latest.memory_total_kib:
            used, total = format_kib(latest.memory_used_kib), format_kib(latest.memory_total_kib)
            return f"{used} / {total}" if latest.memory_used_in_guest else f"{total} (host: {used})"
        return format_kib(row.info.memory_kib) if row.info.memory_kib else ""

    @staticmethod
    def _memory_tip(row: VmRow) -> str | None:
        latest = row.latest
        if not (latest and row.info.state.is_active and latest.memory_total_kib):
            return None
        used, total = format_kib(latest.memory_used_kib), format_kib(latest.memory_total_kib)
        if latest.memory_used_in_guest:
            return f"The guest uses {used} of its {total}."
        return (
            f"The guest has {total}; it does not report its own use (no balloon driver). "
            f"{used} is what its process takes on the host."
        )

    def _sort_value(self, row: VmRow, col: Column) -> Any:
        info = row.info
        if col == Column.NAME:
            return info.name.casefold()
        if col == Column.STATE:
            return _STATE_ORDER[info.state]
        if col == Column.CPU:
            latest = row.latest
            return latest.cpu_percent if latest and info.state.is_active else -1.0
        if col == Column.MEMORY:
            return info.memory_kib
        if col == Column.CONNECTION:
            return connection_label(info.connection).casefold()
        return self._hosts.get(info.connection, info.connection).casefold()

    def vm(self, key: VmKey) -> VmInfo | None:
        i = self._index.get(key)
        return None if i is None else self._rows[i].info

    def history(self, key: VmKey) -> list[VmRates]:
        i = self._index.get(key)
        return [] if i is None else self._rows[i].history.as_rates(key[1])

    def row_of(self, key: VmKey) -> int:
        return self._index.get(key, -1)

    def keys(self, connection: str | None = None) -> list[VmKey]:
        return [
            (r.info.connection, r.info.vm_id)
            for r in self._rows
            if connection is None or r.info.connection == connection
        ]

    # ---- writing ---------------------------------------------------------------------------

    def set_host_label(self, connection: str, label: str) -> None:
        self._hosts[connection] = label
        rows = [i for i, r in enumerate(self._rows) if r.info.connection == connection]
        if rows:
            self._emit_cells(rows, Column.HOST, Column.HOST)

    def upsert(self, vms: Iterable[VmInfo]) -> None:
        """Add new VMs in one insert, and signal only the cells that changed for known ones."""
        new: dict[VmKey, VmInfo] = {}
        changed: dict[int, list[Column]] = {}
        for vm in vms:
            key = (vm.connection, vm.vm_id)
            i = self._index.get(key)
            if i is None:
                new[key] = vm
                continue
            old = self._rows[i].info
            if old == vm:
                continue
            cols = _changed_columns(old, vm)
            if vm.state.is_active != old.state.is_active:
                cols += [Column.CPU, Column.MEMORY]  # CPU text and memory source flip with state
            if not vm.state.is_active:
                self._rows[i].history.clear()
            self._rows[i].info = vm
            changed.setdefault(i, []).extend(cols)
        for i, cols in changed.items():
            if cols:
                self._emit_cells([i], min(cols), max(cols))
        if new:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for key, vm in new.items():
                self._index[key] = len(self._rows)
                self._rows.append(VmRow(vm))
            self.endInsertRows()

    def remove(self, keys: Iterable[VmKey]) -> None:
        going = [k for k in dict.fromkeys(keys) if k in self._index]
        rows = sorted((self._index[k] for k in going), reverse=True)
        if not rows:
            return
        self.removing.emit(going)
        # Remove contiguous runs with one signal each, from the bottom so row numbers hold.
        start = end = rows[0]
        for r in rows[1:] + [-2]:
            if r == start - 1:
                start = r
                continue
            self.beginRemoveRows(QModelIndex(), start, end)
            for gone in self._rows[start : end + 1]:
                del self._index[(gone.info.connection, gone.info.vm_id)]
            del self._rows[start : end + 1]
            # The index must be right before endRemoveRows: its listeners look rows up by key.
            for i in range(start, len(self._rows)):
                self._index[(self._rows[i].info.connection, self._rows[i].info.vm_id)] = i
            self.endRemoveRows()
            start = end = r
        self.removed.emit(going)

    def replace_connection(self, connection: str, vms: list[VmInfo]) -> None:
        """Make this connection's rows exactly `vms` (after a (re)connect lists them afresh)."""
        keep = {vm.vm_id for vm in vms}
        gone = [k for k in self.keys(connection) if k[1] not in keep]
        self.remove(gone)
        self.upsert(vms)

    def remove_connection(self, connection: str) -> None:
        self.remove(self.keys(connection))
        self._hosts.pop(connection, None)
        self._stale.discard(connection)

    def apply_rates(self, connection: str, rates: Iterable[VmRates]) -> list[VmKey]:
        """One stats tick: append to each VM's history, then two range signals at most."""
        touched: list[int] = []
        keys: list[VmKey] = []
        for r in rates:
            key = (connection, r.vm_id)
            i = self._index.get(key)
            if i is None:
                continue
            self._rows[i].history.append(r)
            touched.append(i)
            keys.append(key)
        if touched:
            self.stats_changed.emit(min(touched), max(touched))
        return keys

    def _emit_cells(self, rows: list[int], first_col: Column, last_col: Column) -> None:
        top, bottom = min(rows), max(rows)
        self.dataChanged.emit(self.index(top, first_col), self.index(bottom, last_col))
