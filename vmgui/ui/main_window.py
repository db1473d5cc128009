"""The main window: connection sidebar, VM list with filter, details, toolbar, status bar."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import QItemSelection, QPoint, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import BUILTIN_URI, Backend
from vmgui.model import ConnectionState, ConnectionStatus, VmInfo
from vmgui.settings import Settings, save_settings
from vmgui.ui.actions import SPECS, VmActions
from vmgui.ui.connections import ConnectionManager, readable
from vmgui.ui.details import DetailsView
from vmgui.ui.dialogs import (
    AddConnectionDialog,
    CredentialPromptLike,
    CredentialsDialog,
    run_dialog,
    uri_problem,
)
from vmgui.ui.emulation_warning import HostStatusCache, confirm_start
from vmgui.ui.icons import app_icon, computer_icon, connection_icon
from vmgui.ui.preferences import PreferencesDialog
from vmgui.ui.sparkline import SparklineDelegate
from vmgui.ui.vm_model import COLUMN_KEYS, KEY_ROLE, Column, VmKey, VmTableModel
from vmgui.ui.vm_proxy import VmFilterProxy

ALL_URI = ""  # sidebar entry that shows every connection's VMs side by side
URI_ROLE = Qt.ItemDataRole.UserRole + 1

AskCredentials = Callable[[str, list[Any]], Awaitable[list[str] | None]]
BackendFactory = Callable[[str, AskCredentials], Backend]


def _host_page(parent: QWidget) -> QWidget:
    """The host-check page when that module exists; until then an explanatory empty state."""
    if importlib.util.find_spec("vmgui.ui.host_page") is not None:
        try:
            module = importlib.import_module("vmgui.ui.host_page")
            page: QWidget = module.HostPage(parent)
            return page
        except Exception as exc:  # noqa: BLE001 - a broken page must not stop the app
            text = f"The host page could not be shown: {readable(exc)}"
    else:
        text = "This computer (built-in)\n\nThe built-in virtual machine monitor has no VMs yet."
    label = QLabel(text, parent)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    return label


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings,
        backend_factory: BackendFactory,
        persist: Callable[[Settings], None] = save_settings,
        extra_uris: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._persist = persist
        self.setWindowTitle("vmgui")
        self.setWindowIcon(app_icon())
        self.resize(1100, 720)
        self.last_error = ""
        self._host_probed = False
        self.last_dialog: Any = None
        self.last_message_box: QMessageBox | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

        self.model = VmTableModel(self)
        self.proxy = VmFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.manager = ConnectionManager(
            self.model, lambda uri: backend_factory(uri, self.ask_credentials), self
        )
        self.manager.stats_interval_s = settings.stats_interval_s
        self.manager.status_changed.connect(self._on_status)

        self._build_sidebar()
        self._build_vm_page()
        self.host_page = _host_page(self)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.vm_page)
        self.pages.addWidget(self.host_page)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.sidebar_panel)
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 860])
        self.setCentralWidget(splitter)

        # The host measurement, shared by the host page, the wizard and the start warning.
        self.host_status = HostStatusCache()
        status_changed = getattr(self.host_page, "statusChanged", None)
        if status_changed is not None:
            status_changed.connect(self.host_status.set)
        self.vm_actions = VmActions(
            self.model,
            self.manager,
            self.selected_key,
            self.show_error,
            self.show_status,
            self,
            confirm_start=self._confirm_start,
        )
        self._build_menus_and_toolbar()
        self.apply_visible_columns()
        self.summary_label = QLabel()
        self.statusBar().addPermanentWidget(self.summary_label)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._update_summary)
        self.model.dataChanged.connect(lambda *_: self.vm_actions.update_enabled())

        # --connect URIs replace the saved list for this session (and are not saved).
        for uri in dict.fromkeys(extra_uris or settings.connections):
            self.open_connection(uri)
        self.select_connection(ALL_URI if self.manager.uris() else BUILTIN_URI)

    # ---- layout ----------------------------------------------------------------------------

    def _build_sidebar(self) -> None:
        self.sidebar = QListWidget()
        self.sidebar.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long URIs keep both ends
        self.sidebar.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.sidebar.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.sidebar.customContextMenuRequested.connect(self._sidebar_menu)
        for uri, text, icon in ((ALL_URI, "All virtual machines", app_icon()),
                                (BUILTIN_URI, "This computer (built-in)", computer_icon())):
            item = QListWidgetItem(icon, text)
            item.setData(URI_ROLE, uri)
            self.sidebar.addItem(item)
        self.sidebar.currentItemChanged.connect(self._on_sidebar_changed)
        self.add_button = QToolButton()
        self.add_button.setText("+")
        self.add_button.setToolTip("Add a connection")
        self.add_button.clicked.connect(self.add_connection_dialog)
        self.remove_button = QToolButton()
        self.remove_button.setText("−")
        self.remove_button.setToolTip("Remove the selected connection")
        self.remove_button.clicked.connect(self.remove_selected_connection)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        self.sidebar_panel = QWidget()
        layout = QVBoxLayout(self.sidebar_panel)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Connections")
        title.setStyleSheet("font-weight: bold; padding: 4px")
        layout.addWidget(title)
        layout.addWidget(self.sidebar)
        layout.addLayout(buttons)

    def _build_vm_page(self) -> None:
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter by name, state or connection (Ctrl+F)")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.textChanged.connect(self.proxy.set_text)
        self.table = QTableView()
        self.table.setModel(self.proxy)
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
        vh.setDefaultSectionSize(26)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(True)
        for col, width in ((Column.NAME, 220), (Column.STATE, 120), (Column.CPU, 160),
                           (Column.MEMORY, 170)):
            self.table.setColumnWidth(col, width)
        self.sparkline = SparklineDelegate(self.table)
        self.table.setItemDelegateForColumn(Column.CPU, self.sparkline)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(self._on_selection_changed)
        self.details = DetailsView(self.model, self.manager)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.vm_page = QWidget()
        layout = QVBoxLayout(self.vm_page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_box)
        layout.addWidget(split)

    def _build_menus_and_toolbar(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_vm_action = QAction(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogNewFolder), "&New VM…", self
        )
        self.new_vm_action.setShortcut(QKeySequence(QKeySequence.StandardKey.New))
        self.new_vm_action.setToolTip("Create a virtual machine (Ctrl+N)")
        self.new_vm_action.triggered.connect(self.new_vm_wizard)
        file_menu.addAction(self.new_vm_action)
        self.add_connection_action = QAction("&Add Connection…", self)
        self.add_connection_action.triggered.connect(self.add_connection_dialog)
        self.preferences_action = QAction("&Preferences…", self)
        self.preferences_action.setShortcut(QKeySequence("Ctrl+,"))
        self.preferences_action.triggered.connect(self.preferences_dialog)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Quit))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(self.add_connection_action)
        file_menu.addAction(self.preferences_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        vm_menu = bar.addMenu("&Virtual Machine")
        for spec in SPECS:
            vm_menu.addAction(self.vm_actions.actions[spec.name])
        find = QAction("Find", self)
        find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        find.triggered.connect(lambda: self.filter_box.setFocus())
        self.addAction(find)
        toolbar = self.addToolBar("Actions")
        toolbar.setObjectName("actions")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.new_vm_action)
        toolbar.addSeparator()
        for spec in SPECS:
            toolbar.addAction(self.vm_actions.actions[spec.name])

    # ---- creating and starting VMs ---------------------------------------------------------

    def connected_backends(self) -> list[tuple[str, str, Backend]]:
        """(uri, name, backend) of every connected connection, the one in view first."""
        current = self.sidebar.currentItem()
        shown = current.data(URI_ROLE) if current else ALL_URI
        rows: list[tuple[str, str, Backend]] = []
        for uri in self.manager.uris():
            backend = self.manager.backend(uri)
            status = self.manager.status(uri)
            if backend is None or status is None or status.state is not ConnectionState.CONNECTED:
                continue
            rows.insert(0 if uri == shown else len(rows), (uri, backend.display_name, backend))
        return rows

    def new_vm_wizard(self) -> None:
        backends = self.connected_backends()
        if not backends:
            self.show_error(
                "There is no connected host to create a VM on: add a connection first "
                "(File → Add Connection…)."
            )
            return
        self.last_dialog = None
        self.spawn(self._new_vm_wizard(backends))

    async def _new_vm_wizard(self, backends: list[tuple[str, str, Backend]]) -> None:
        from vmgui.ui.new_vm_wizard import run_new_vm_wizard  # noqa: PLC0415 - opened rarely

        info = await run_new_vm_wizard(self, backends, self.host_status)
        if info is not None:
            self.show_status(f"Created “{info.name}”")
            self.select_vm((info.connection, info.vm_id))

    async def _confirm_start(self, uri: str, vm: VmInfo) -> bool:
        backend = self.manager.backend(uri)
        if backend is None:
            return True
        return await confirm_start(self, backend, vm.vm_id, await self.host_status(), vm.name)

    def apply_visible_columns(self) -> None:
        for col, key in COLUMN_KEYS.items():
            self.table.setColumnHidden(col, key not in self.settings.visible_columns)

    # ---- selection -------------------------------------------------------------------------

    def selected_key(self) -> VmKey | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        key: VmKey = rows[0].data(KEY_ROLE)
        return key

    def select_vm(self, key: VmKey) -> bool:
        row = self.model.row_of(key)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectRow(index.row())
        return True

    def _on_selection_changed(self, *_: QItemSelection) -> None:
        self.details.show_vm(self.selected_key())
        self.vm_actions.update_enabled()

    def _table_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        for spec in SPECS:
            menu.addAction(self.vm_actions.actions[spec.name])
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _update_summary(self, *_: Any) -> None:
        self.summary_label.setText(
            f"{self.proxy.rowCount()} of {self.model.rowCount()} VMs · "
            f"{len(self.manager.uris())} connection(s)"
        )

    # ---- connections -----------------------------------------------------------------------

    def sidebar_item(self, uri: str) -> QListWidgetItem | None:
        for i in range(self.sidebar.count()):
            item = self.sidebar.item(i)
            if item.data(URI_ROLE) == uri:
                return item
        return None

    def select_connection(self, uri: str) -> None:
        item = self.sidebar_item(uri)
        if item is not None:
            self.sidebar.setCurrentItem(item)

    def _on_sidebar_changed(self, current: QListWidgetItem | None, _: Any = None) -> None:
        uri = current.data(URI_ROLE) if current else ALL_URI
        self.remove_button.setEnabled(uri not in (ALL_URI, BUILTIN_URI))
        if uri == BUILTIN_URI:
            self.pages.setCurrentWidget(self.host_page)
            self._probe_host()
            return
        self.pages.setCurrentWidget(self.vm_page)
        self.proxy.set_connection(uri or None)
        self._update_summary()

    def _probe_host(self) -> None:
        """Run the host page's probe the first time the page is shown (it is not free)."""
        start = getattr(self.host_page, "start_probe", None)
        if start is None or self._host_probed:
            return
        self._host_probed = True
        try:
            start(tuple(self.manager.uris()))
        except Exception as exc:  # noqa: BLE001 - the page shows its own errors; this is a guard
            self.show_status(f"The host check could not start: {readable(exc)}")

    def open_connection(self, uri: str) -> None:
        if self.sidebar_item(uri) is None:
            item = QListWidgetItem(connection_icon(ConnectionState.CONNECTING), uri)
            item.setData(URI_ROLE, uri)
            item.setToolTip(f"Connecting to {uri}…")
            self.sidebar.addItem(item)
        self.manager.add(uri)

    def add_connection(self, uri: str) -> str:
        """Add, open and remember a connection; returns the problem when it cannot be added."""
        problem = uri_problem(uri.strip(), self.manager.uris() + [BUILTIN_URI])
        if problem:
            self.show_error(problem)
            return problem
        uri = uri.strip()
        self.open_connection(uri)
        if uri not in self.settings.connections:
            self.settings.connections.append(uri)
            self.save_settings()
        self.select_connection(uri)
        return ""

    def add_connection_dialog(self) -> None:
        self.spawn(self._add_connection_dialog())

    async def _add_connection_dialog(self) -> None:
        dialog = AddConnectionDialog(self.manager.uris() + [BUILTIN_URI], self)
        self.last_dialog = dialog
        try:
            if await run_dialog(dialog):
                self.add_connection(dialog.uri())
        finally:
            dialog.deleteLater()

    def remove_selected_connection(self) -> None:
        item = self.sidebar.currentItem()
        uri = item.data(URI_ROLE) if item else ALL_URI
        if uri not in (ALL_URI, BUILTIN_URI):
            self.spawn(self.remove_connection(uri))

    async def remove_connection(self, uri: str) -> None:
        item = self.sidebar_item(uri)
        if item is not None:
            self.sidebar.takeItem(self.sidebar.row(item))
        if uri in self.settings.connections:
            self.settings.connections.remove(uri)
            self.save_settings()
        await self.manager.remove(uri)
        self.show_status(f"Removed connection {uri}")
        self._update_summary()

    def _sidebar_menu(self, pos: QPoint) -> None:
        item = self.sidebar.itemAt(pos)
        uri = item.data(URI_ROLE) if item else ALL_URI
        menu = QMenu(self)
        menu.addAction(self.add_connection_action)
        if uri not in (ALL_URI, BUILTIN_URI):
            menu.addAction("Reconnect", lambda: self.spawn(self.manager.reconnect(uri)))
            menu.addAction("Remove Connection", lambda: self.spawn(self.remove_connection(uri)))
        menu.popup(self.sidebar.viewport().mapToGlobal(pos))

    def _on_status(self, status: ConnectionStatus) -> None:
        item = self.sidebar_item(status.uri)
        if status.state == ConnectionState.CONNECTED:
            text = f"Connected to {status.uri}"
        elif status.state == ConnectionState.CONNECTING:
            text = f"Connecting to {status.uri}…"
        else:
            reason = (status.message or "the connection was lost").rstrip(".")
            prefix = f"Disconnected from {status.uri}"
            text = reason if reason.startswith(prefix) else f"{prefix}: {reason}"
            # The backend retries on its own once a connection has worked.
            if self.model.keys(status.uri) and "retry" not in reason.lower():
                text += ", retrying"
        if item is not None:
            item.setIcon(connection_icon(status.state))
            item.setToolTip(text)
        self.show_status(text)

    async def ask_credentials(
        self, uri: str, prompts: list[CredentialPromptLike]
    ) -> list[str] | None:
        """openAuth's callback, awaited by the backend: one answer per prompt, None = cancel."""
        dialog = CredentialsDialog(uri, prompts, self)
        self.last_dialog = dialog
        try:
            return dialog.answers() if await run_dialog(dialog) else None
        finally:
            dialog.deleteLater()

    # ---- preferences -----------------------------------------------------------------------

    def preferences_dialog(self) -> None:
        self.spawn(self._preferences_dialog())

    async def _preferences_dialog(self) -> None:
        dialog = PreferencesDialog(self.settings, self)
        self.last_dialog = dialog
        try:
            if await run_dialog(dialog):
                dialog.apply_to(self.settings)
                self.apply_settings()
                self.save_settings()
        finally:
            dialog.deleteLater()

    def apply_settings(self) -> None:
        self.manager.stats_interval_s = self.settings.stats_interval_s
        self.apply_visible_columns()

    def save_settings(self) -> None:
        try:
            self._persist(self.settings)
        except OSError as exc:
            self.show_error(f"Could not save the settings: {exc.strerror or exc}")

    # ---- messages and tasks ----------------------------------------------------------------

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def show_error(self, text: str) -> None:
        """One readable sentence: status bar and a non-blocking message box."""
        self.last_error = text
        self.statusBar().showMessage(text)
        box = QMessageBox(QMessageBox.Icon.Warning, "vmgui", text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.last_message_box = box
        box.open()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.show_error(readable(task.exception() or Exception()))

    def closeEvent(self, event: QCloseEvent) -> None:
        for t in list(self.tasks) + list(self.vm_actions.tasks):
            t.cancel()
        super().closeEvent(event)

    async def shutdown(self) -> None:
        """Close every connection (the app awaits this before the loop ends)."""
        await self.manager.close_all()

