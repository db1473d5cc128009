"""Where the VM list's selection goes when rows come and go.

When the selected VM's row is removed (deleted here or elsewhere), the selection moves to a
neighbour of the same connection, or to nothing; never to another connection's VM that happened
to be next in the "All virtual machines" list. A VM asked for before its row exists (just
created: the row follows the backend's event) is selected as soon as it is listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSortFilterProxyModel

from vmgui.ui.vm_model import KEY_ROLE, VmKey, VmTableModel

_NOTHING = ("", "")  # "select nothing" as a replacement


class SelectionKeeper(QObject):
    def __init__(
        self,
        model: VmTableModel,
        proxy: QSortFilterProxyModel,
        selected: Callable[[], VmKey | None],
        select: Callable[[VmKey], bool],
        clear: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._proxy = proxy
        self._selected = selected
        self._select = select
        self._clear = clear
        self._replacement: VmKey | None = None
        self._pending: VmKey | None = None
        model.removing.connect(self._removing)
        model.removed.connect(self._removed)
        model.rowsInserted.connect(self._inserted)

    def select_when_listed(self, key: VmKey) -> None:
        """Select `key` now if it is listed, else as soon as its row arrives."""
        self._pending = None if self._select(key) else key

    def _removing(self, keys: list[VmKey]) -> None:
        key = self._selected()
        if key is None or key not in keys:
            return
        going = set(keys)
        here = self._proxy.mapFromSource(self._model.index(self._model.row_of(key), 0)).row()
        rows = self._proxy.rowCount()
        self._replacement = _NOTHING
        for r in [*range(here + 1, rows), *range(here - 1, -1, -1)]:
            other: VmKey = self._proxy.index(r, 0).data(KEY_ROLE)
            if other[0] == key[0] and other not in going:
                self._replacement = other
                break

    def _removed(self, *_: Any) -> None:
        replacement, self._replacement = self._replacement, None
        if replacement is None:
            return
        if replacement == _NOTHING or not self._select(replacement):
            self._clear()

    def _inserted(self, *_: Any) -> None:
        if self._pending is not None and self._model.row_of(self._pending) >= 0:
            self._select(self._pending)
            self._pending = None
