"""The main window: composes the connection sidebar, the VM page, the host page and the actions.

The parts are built elsewhere (sidebar.py, vm_page.py, actions.py, host_page.py); this module
wires them to the connection manager and owns what belongs to the whole window: menus and
toolbar, adding and removing connections, preferences, and how messages reach the user.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import BUILTIN_URI, Backend, BackendError
from vmgui.model import ConnectionState, ConnectionStatus, VmInfo
from vmgui.model.credentials import AskCredentials, CredentialPrompt
from vmgui.settings import Settings, save_settings
from vmgui.ui import help as help_windows
from vmgui.ui import window_state
from vmgui.ui.actions import SPECS, VmAction, VmActions
from vmgui.ui.builtin_tabs import BuiltinTabs
from vmgui.ui.connections import ConnectionManager
from vmgui.ui.dialogs import AddConnectionDialog, CredentialsDialog, uri_problem
from vmgui.ui.edit_vm_dialog import EditVmDialog, edit_vm
from vmgui.ui.emulation_warning import HostStatusCache, confirm_start
from vmgui.ui.errors import ErrorDialog
from vmgui.ui.force_off import confirm_force_off, confirm_force_reset
from vmgui.ui.host_page import HostPage
from vmgui.ui.icons import app_icon
from vmgui.ui.preferences import PreferencesDialog
from vmgui.ui.selection import SelectionKeeper
from vmgui.ui.sidebar import ALL_URI, URI_ROLE, ConnectionSidebar, is_removable
from vmgui.ui.tasks import accepted, cancel_tasks, run_for
from vmgui.ui.vm_model import Column, VmKey, VmTableModel
from vmgui.ui.vm_page import VmPage
from vmgui.ui.vm_proxy import VmFilterProxy

__all__ = ["ALL_URI", "BUILTIN_URI", "URI_ROLE", "BackendFactory", "MainWindow"]

log = logging.getLogger(__name__)
T = TypeVar("T")

BackendFactory = Callable[[str, AskCredentials], Backend]


async def created_message(backend: Backend, info: VmInfo) -> str:
    """What the status bar says about a new VM; for an install from CD media, that the media
    boots once and how to eject it afterwards (virt-install's behaviour, said out loud)."""
    text = f"Created “{info.name}”"
    try:
        settings = await backend.get_settings(info.vm_id)
    except BackendError:
        return text
    if any(drive.media for drive in settings.cdroms) and not settings.direct_boot:
        text += (
            ": it boots its installation media once, then its disk; eject the media with "
            "Edit (Ctrl+E) once the install is done"
        )
    return text


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

        self.model = VmTableModel(self)
        self.proxy = VmFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.manager = ConnectionManager(
            self.model, lambda uri: backend_factory(uri, self.ask_credentials), self
        )
        self.manager.stats_interval_s = settings.stats_interval_s
        self.manager.status_changed.connect(self._on_status)
        self.manager.failed.connect(self.show_status)

        self.sidebar = ConnectionSidebar()
        self.sidebar.selected.connect(self._on_sidebar_changed)
        self.sidebar.add_requested.connect(self.add_connection_dialog)
        self.sidebar.remove_requested.connect(
            lambda uri: self.spawn(self.remove_connection(uri), f"remove {uri}")
        )
        self.sidebar.reconnect_requested.connect(
            lambda uri: self.spawn(self.manager.reconnect(uri), f"reconnect to {uri}")
        )
        self.remove_button = self.sidebar.remove_button
        self.vm_page = VmPage(self.model, self.proxy, self.manager)
        self.table = self.vm_page.table
        self.filter_box = self.vm_page.filter_box
        self.details = self.vm_page.details
        self.sparkline = self.vm_page.sparkline
        self.host_page = HostPage(self)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.vm_page)
        self.pages.addWidget(self.host_page)
        self.builtin_tabs = BuiltinTabs()
        self.builtin_tabs.currentChanged.connect(lambda _i: self._on_sidebar_changed(BUILTIN_URI))
        right = QWidget()
        right_column = QVBoxLayout(right)
        right_column.setContentsMargins(0, 0, 0, 0)
        right_column.setSpacing(0)
        right_column.addWidget(self.builtin_tabs)
        right_column.addWidget(self.pages)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 860])
        self.setCentralWidget(splitter)
        self.splitters = {"main": splitter, "list": self.vm_page.splitter}
        self.empty_hint = self.vm_page.empty_hint
        self.selection = SelectionKeeper(
            self.model, self.proxy, self.selected_key, self.select_vm,
            self.table.clearSelection, self,
        )
        self._ever_connected: set[str] = set()

        # The host measurement, shared by the host page, the wizard and the start warning.
        self.host_status = HostStatusCache()
        self.host_page.statusChanged.connect(self.host_status.set)
        self.vm_actions = VmActions(
            self.model,
            self.manager,
            self.selected_key,
            self.show_error,
            self.show_status,
            self,
            confirm_start=self._confirm_start,
            confirm_forced=self._confirm_forced,
        )
        # Delete acts on the list only: typed in the XML view (or any field) it deletes nothing.
        delete = self.vm_actions.actions[VmAction.DELETE]
        self.removeAction(delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.table.addAction(delete)
        self.vm_page.selection_changed.connect(lambda _key: self.update_actions())
        self.vm_page.menu_requested.connect(self._table_menu)
        self._build_menus_and_toolbar()
        self.sidebar.add_action = self.add_connection_action
        self.apply_visible_columns()
        self.summary_label = QLabel()
        self.statusBar().addPermanentWidget(self.summary_label)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._update_summary)
        self.model.dataChanged.connect(lambda *_: self.update_actions())
        window_state.restore(self, self.splitters, self.table, settings)

        # This computer's VMs are always listed (VMMs that outlived the last session included).
        self.manager.add(BUILTIN_URI)
        # --connect URIs replace the saved list for this session (and are not saved).
        for uri in dict.fromkeys(extra_uris or settings.connections):
            self.open_connection(uri)
        self.select_connection(ALL_URI if len(self.manager.uris()) > 1 else BUILTIN_URI)
        self._show_empty_hint()

    # ---- layout ----------------------------------------------------------------------------

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
        self.open_console_action = QAction(
            self.style().standardIcon(QStyle.StandardPixmap.SP_DesktopIcon), "&Open", self
        )
        self.open_console_action.setToolTip("Show the VM's console (double-click or Enter on it)")
        self.open_console_action.triggered.connect(self.details.open_console)
        self.vm_page.open_requested.connect(lambda _key: self.details.open_console())
        self.vm_page.selection_changed.connect(lambda _key: self._update_open_enabled())
        self.model.dataChanged.connect(lambda *_: self._update_open_enabled())
        self._update_open_enabled()
        self.edit_action = QAction(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView),
            "&Edit…", self,
        )
        self.edit_action.setShortcut(QKeySequence("Ctrl+E"))
        self.edit_action.setToolTip("Change memory, CPUs, boot order, CD media… (Ctrl+E)")
        self.edit_action.triggered.connect(self.edit_selected_vm)
        self.addAction(self.edit_action)
        vm_menu = bar.addMenu("&Virtual Machine")
        vm_menu.addAction(self.open_console_action)
        vm_menu.addAction(self.edit_action)
        vm_menu.addSeparator()
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
        toolbar.addAction(self.edit_action)
        toolbar.addSeparator()
        toolbar.addAction(self.open_console_action)
        for spec in SPECS:
            toolbar.addAction(self.vm_actions.actions[spec.name])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction("&Keyboard Shortcuts", self.show_shortcuts)
        help_menu.addAction("&About vmgui", lambda: help_windows.show_about(self))

    def _shortcut_actions(self) -> list[QAction]:
        return [self.new_vm_action, self.edit_action, *self.vm_actions.actions.values(),
                *self.actions(), self.preferences_action]

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(what, keys) of every shortcut, read from the actions themselves."""
        return help_windows.shortcut_rows(self._shortcut_actions())

    def show_shortcuts(self) -> None:
        help_windows.show_shortcuts(self, self._shortcut_actions())

    def _table_menu(self, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addAction(self.open_console_action)
        menu.addAction(self.edit_action)
        for spec in SPECS:
            menu.addAction(self.vm_actions.actions[spec.name])
        menu.popup(global_pos)

    def _update_open_enabled(self) -> None:
        key = self.selected_key()
        vm = self.model.vm(key) if key else None
        live = key is not None and not self.model.is_stale(key)
        self.open_console_action.setEnabled(vm is not None and vm.state.is_active and live)

    def _update_summary(self, *_: Any) -> None:
        self.summary_label.setText(
            f"{self.proxy.rowCount()} of {self.model.rowCount()} VMs · "
            f"{len(self.manager.uris())} connection(s)"
        )

    # ---- creating and starting VMs ---------------------------------------------------------

    def connected_backends(self) -> list[tuple[str, str, Backend]]:
        """(uri, name, backend) of every connected connection, the one in view first."""
        shown = self.sidebar.current_uri()
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
        self.spawn(self._new_vm_wizard(backends), "open the New VM wizard")

    async def _new_vm_wizard(self, backends: list[tuple[str, str, Backend]]) -> None:
        from vmgui.ui.new_vm_wizard import run_new_vm_wizard  # opened rarely: load on demand

        info = await run_new_vm_wizard(self, backends, self.host_status)
        if info is not None:
            # its row follows the backend's event: select it when it is listed
            self.selection.select_when_listed((info.connection, info.vm_id))
            backend = self.manager.backend(info.connection)
            self.show_status(await created_message(backend, info) if backend else "")


    async def _confirm_start(self, uri: str, vm: VmInfo) -> bool:
        backend = self.manager.backend(uri)
        if backend is None:
            return True
        return await confirm_start(self, backend, vm.vm_id, await self.host_status(), vm.name)

    async def _confirm_forced(self, action: VmAction, vm: VmInfo) -> bool:
        ask = confirm_force_reset if action is VmAction.FORCE_RESET else confirm_force_off
        return await ask(self, vm.name, self.settings, self.save_settings)

    # ---- editing ---------------------------------------------------------------------------

    def edit_selected_vm(self) -> None:
        key = self.selected_key()
        vm = self.model.vm(key) if key else None
        backend = self.manager.backend(key[0]) if key else None
        if key is None or vm is None or backend is None or self.model.is_stale(key):
            return
        self.spawn(self._edit(backend, vm), f"edit “{vm.name}”")

    async def _edit(self, backend: Backend, vm: VmInfo) -> None:
        def opened(dialog: EditVmDialog) -> None:
            self.last_dialog = dialog

        message = await edit_vm(self, backend, vm, opened)
        if message:
            self.show_status(message)

    def update_actions(self) -> None:
        """Enable what applies to the VM in view (none on the host page or a stale row)."""
        self.vm_actions.update_enabled()
        self._update_open_enabled()
        key = self.selected_key()
        self.edit_action.setEnabled(
            key is not None and self.model.vm(key) is not None and not self.model.is_stale(key)
        )

    def apply_visible_columns(self) -> None:
        self.vm_page.show_columns(self.settings.visible_columns)
        if self.sidebar.current_uri() != ALL_URI:  # one connection in view: no need to say whose
            self.table.setColumnHidden(Column.CONNECTION, True)

    # ---- selection -------------------------------------------------------------------------

    def selected_key(self) -> VmKey | None:
        """The selected VM while the VM list is in view; None on the host page."""
        if self.pages.currentWidget() is not self.vm_page:
            return None
        return self.vm_page.selected_key()

    def select_vm(self, key: VmKey) -> bool:
        return self.vm_page.select_vm(key)

    # ---- connections -----------------------------------------------------------------------

    def sidebar_item(self, uri: str) -> QListWidgetItem | None:
        return self.sidebar.item(uri)

    def select_connection(self, uri: str) -> None:
        self.sidebar.select(uri)

    def _on_sidebar_changed(self, uri: str) -> None:
        self.builtin_tabs.setVisible(uri == BUILTIN_URI)
        if uri == BUILTIN_URI and self.builtin_tabs.currentIndex() == BuiltinTabs.HOST:
            self.pages.setCurrentWidget(self.host_page)
            self._probe_host()
            self.update_actions()
            return
        self.pages.setCurrentWidget(self.vm_page)
        self.proxy.set_connection(uri or None)
        self.apply_visible_columns()
        self._update_summary()
        self._show_empty_hint()
        self.update_actions()

    def _show_empty_hint(self) -> None:
        """Without any libvirt connection, "All virtual machines" says how to add one."""
        libvirt_hosts = [u for u in self.manager.uris() if u != BUILTIN_URI]
        self.empty_hint.setVisible(not libvirt_hosts and self.sidebar.current_uri() == ALL_URI)

    def _probe_host(self) -> None:
        """Run the host page's probe the first time the page is shown (it is not free)."""
        if self._host_probed:
            return
        self._host_probed = True
        self.host_page.start_probe(self.manager.backends())

    def open_connection(self, uri: str) -> None:
        self.sidebar.add_connection(uri)
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
        self._show_empty_hint()
        return ""

    def add_connection_dialog(self) -> None:
        self.spawn(self._add_connection_dialog(), "add a connection")

    async def _add_connection_dialog(self) -> None:
        dialog = AddConnectionDialog(self.manager.uris() + [BUILTIN_URI], self)
        self.last_dialog = dialog
        try:
            if await accepted(dialog):
                self.add_connection(dialog.uri())
        finally:
            dialog.deleteLater()

    def remove_selected_connection(self) -> None:
        uri = self.sidebar.current_uri()
        if is_removable(uri):
            self.spawn(self.remove_connection(uri), f"remove {uri}")

    async def remove_connection(self, uri: str) -> None:
        self.sidebar.remove_connection(uri)
        if uri in self.settings.connections:
            self.settings.connections.remove(uri)
            self.save_settings()
        await self.manager.remove(uri)
        self._ever_connected.discard(uri)
        self.show_status(f"Removed connection {uri}")
        self._update_summary()
        self._show_empty_hint()

    def _on_status(self, status: ConnectionStatus) -> None:
        # Rows of a connection that is not (or no longer) connected are last known, not live.
        self.model.set_stale(status.uri, status.state is not ConnectionState.CONNECTED)
        self.update_actions()
        if status.state == ConnectionState.CONNECTED:
            self._ever_connected.add(status.uri)
            text = f"Connected to {status.uri}"
        elif status.state == ConnectionState.CONNECTING:
            text = f"Connecting to {status.uri}…"
        elif status.uri not in self._ever_connected:  # never worked: not "disconnected"
            reason = (status.message or "it did not answer").rstrip(".")
            prefix = f"Cannot connect to {status.uri}: "
            text = f"Could not connect to {status.uri}: {reason.removeprefix(prefix)}"
        else:
            reason = (status.message or "the connection was lost").rstrip(".")
            prefix = f"Disconnected from {status.uri}"
            text = reason if reason.startswith(prefix) else f"{prefix}: {reason}"
            # The backend retries on its own once a connection has worked.
            if self.model.keys(status.uri) and "retry" not in reason.lower():
                text += ", retrying"
        self.sidebar.show_state(status.uri, status.state, text)
        self.show_status(text)

    async def ask_credentials(
        self, uri: str, prompts: list[CredentialPrompt]
    ) -> list[str] | None:
        """openAuth's callback, awaited by the backend: one answer per prompt, None = cancel."""
        dialog = CredentialsDialog(uri, prompts, self)
        self.last_dialog = dialog
        try:
            return dialog.answers() if await accepted(dialog) else None
        finally:
            dialog.deleteLater()

    # ---- preferences -----------------------------------------------------------------------

    def preferences_dialog(self) -> None:
        self.spawn(self._preferences_dialog(), "change the preferences")

    async def _preferences_dialog(self) -> None:
        dialog = PreferencesDialog(self.settings, self)
        self.last_dialog = dialog
        try:
            if await accepted(dialog):
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
            log.warning("cannot save the settings: %s", exc)
            self.show_error(f"Could not save the settings: {exc.strerror or exc}")

    # ---- messages and tasks ----------------------------------------------------------------

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def show_error(self, text: str, details: str = "") -> None:
        """One readable sentence: status bar and a non-blocking message box (with Details)."""
        self.last_error = text
        self.statusBar().showMessage(text)
        box = ErrorDialog(text, details, self)
        self.last_message_box = box
        box.open()

    def spawn(self, coro: Coroutine[Any, Any, T], what: str) -> asyncio.Task[T]:
        """`run_for(self, ...)` with this window's error reporting."""
        return run_for(self, coro, what, report=self.show_error)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.details.console.close_all()
        window_state.remember(self, self.splitters, self.table, self.settings)
        self.save_settings()
        cancel_tasks(self)
        cancel_tasks(self.vm_actions.owner)
        super().closeEvent(event)

    async def shutdown(self) -> None:
        """Close every connection (the app awaits this before the loop ends)."""
        await self.manager.close_all()
