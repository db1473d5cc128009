"""The connection sidebar: "All virtual machines", "This computer", then one entry per URI.

A view only: it shows each connection's state as an icon and tooltip and says what the user
asked for through signals; the main window decides what adding, removing or reconnecting means.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import BUILTIN_URI
from vmgui.model import ConnectionState
from vmgui.ui.icons import app_icon, computer_icon, connection_icon

ALL_URI = ""  # sidebar entry that shows every connection's VMs side by side
URI_ROLE = Qt.ItemDataRole.UserRole + 1


def is_removable(uri: str) -> bool:
    """The two fixed entries stay; every added connection can go."""
    return uri not in (ALL_URI, BUILTIN_URI)


class ConnectionSidebar(QWidget):
    #: The entry in view changed (ALL_URI, BUILTIN_URI or a connection URI).
    selected = Signal(str)
    add_requested = Signal()
    remove_requested = Signal(str)
    reconnect_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long URIs keep both ends
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        for uri, text, icon in ((ALL_URI, "All virtual machines", app_icon()),
                                (BUILTIN_URI, "This computer (built-in)", computer_icon())):
            item = QListWidgetItem(icon, text)
            item.setData(URI_ROLE, uri)
            self.list.addItem(item)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.add_button = QToolButton()
        self.add_button.setText("+")
        self.add_button.setToolTip("Add a connection")
        self.add_button.clicked.connect(self.add_requested)
        self.remove_button = QToolButton()
        self.remove_button.setText("−")
        self.remove_button.setToolTip("Remove the selected connection")
        self.remove_button.clicked.connect(self._remove_current)
        self.add_action: QAction | None = None  # the window's "Add Connection…", for the menu
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Connections")
        title.setStyleSheet("font-weight: bold; padding: 4px")
        layout.addWidget(title)
        layout.addWidget(self.list)
        layout.addLayout(buttons)

    def item(self, uri: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(URI_ROLE) == uri:
                return item
        return None

    def current_uri(self) -> str:
        current = self.list.currentItem()
        return str(current.data(URI_ROLE)) if current else ALL_URI

    def select(self, uri: str) -> None:
        item = self.item(uri)
        if item is not None:
            self.list.setCurrentItem(item)

    def add_connection(self, uri: str) -> None:
        if self.item(uri) is None:
            item = QListWidgetItem(connection_icon(ConnectionState.CONNECTING), uri)
            item.setData(URI_ROLE, uri)
            item.setToolTip(f"Connecting to {uri}…")
            self.list.addItem(item)

    def remove_connection(self, uri: str) -> None:
        item = self.item(uri)
        if item is not None:
            self.list.takeItem(self.list.row(item))

    def show_state(self, uri: str, state: ConnectionState, text: str) -> None:
        item = self.item(uri)
        if item is not None:
            if uri != BUILTIN_URI:  # "This computer" keeps its own icon
                item.setIcon(connection_icon(state))
            item.setToolTip(text)

    def _on_current_changed(self, current: QListWidgetItem | None, _: object = None) -> None:
        uri = str(current.data(URI_ROLE)) if current else ALL_URI
        self.remove_button.setEnabled(is_removable(uri))
        self.selected.emit(uri)

    def _remove_current(self) -> None:
        uri = self.current_uri()
        if is_removable(uri):
            self.remove_requested.emit(uri)

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        uri = str(item.data(URI_ROLE)) if item else ALL_URI
        menu = QMenu(self)
        if self.add_action is not None:
            menu.addAction(self.add_action)
        else:
            menu.addAction("Add Connection…", self.add_requested.emit)
        if is_removable(uri):
            menu.addAction("Reconnect", lambda: self.reconnect_requested.emit(uri))
            menu.addAction("Remove Connection", lambda: self.remove_requested.emit(uri))
        menu.popup(self.list.viewport().mapToGlobal(pos))
