"""The details view's Console tab, and the detached console windows of every VM.

The tab shows the selected VM's console (graphics + serial) once it is opened (the Open action,
a double-click or Enter on the row, or the tab's own button), and closes it when another VM is
selected. "Detach" moves the open console into its own window, which then lives on whatever
is selected; opening a VM whose console is already in a window raises that window.
"""

from __future__ import annotations

import functools
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from vmgui.model import VmInfo
from vmgui.ui.connections import ConnectionManager
from vmgui.ui.console.panel import ConsolePanel, ConsoleWindow
from vmgui.ui.tasks import run_for
from vmgui.ui.vm_model import VmKey

log = logging.getLogger(__name__)


class ConsoleTab(QWidget):
    """Embeds one ConsolePanel for the selected VM; owns the detached ConsoleWindows."""

    #: A console panel is open (embedded or detached) for this VM.
    opened = Signal(object)

    def __init__(self, manager: ConnectionManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._manager = manager
        self._key: VmKey | None = None
        self._vm: VmInfo | None = None
        self.panel: ConsolePanel | None = None
        self.windows: dict[VmKey, ConsoleWindow] = {}
        self._message = QLabel()
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        self.open_button = QPushButton("Open console")
        self.open_button.clicked.connect(self.open)
        idle = QWidget()
        idle_layout = QVBoxLayout(idle)
        idle_layout.addStretch(1)
        idle_layout.addWidget(self._message)
        idle_layout.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignHCenter)
        idle_layout.addStretch(1)
        self._stack = QStackedWidget()
        self._stack.addWidget(idle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)
        self._show_idle()

    def show_vm(self, key: VmKey | None, vm: VmInfo | None) -> None:
        """The selection (or the selected VM's state) changed."""
        if key != self._key:
            self._close_embedded()
        self._key, self._vm = key, vm
        if self.panel is None:
            self._show_idle()

    def _show_idle(self) -> None:
        vm = self._vm
        if vm is None:
            text, can_open = "", False
        elif self._key in self.windows:
            text, can_open = f"The console of “{vm.name}” is in its own window.", True
        elif not vm.state.is_active:
            text, can_open = f"“{vm.name}” is not running.", False
        else:
            text, can_open = "", True
        self._message.setText(text)
        self.open_button.setVisible(can_open)
        self._stack.setCurrentIndex(0)

    def open(self) -> None:
        """Open the selected VM's console here (or raise its own window)."""
        key, vm = self._key, self._vm
        if key is None or vm is None:
            return
        window = self.windows.get(key)
        if window is not None:
            window.showNormal()
            window.raise_()
            window.activateWindow()
            return
        if self.panel is not None:
            self.panel.view.setFocus()
            return
        backend = self._manager.backend(key[0])
        if backend is None:
            self._message.setText("The connection of this VM is not open.")
            return
        panel = ConsolePanel(vm.name)
        panel.detachRequested.connect(self.detach)
        panel.fullScreenRequested.connect(self._full_screen_requested)
        self.panel = panel
        self._stack.addWidget(panel)
        self._stack.setCurrentWidget(panel)
        run_for(panel, panel.open(backend, key[1]), f"open the console of “{vm.name}”")
        self.opened.emit(key)

    def _full_screen_requested(self, on: bool) -> None:
        if on:  # full screen is a window's business: detach first
            self.detach(full_screen=True)

    def detach(self, full_screen: bool = False) -> None:
        """Move the embedded console into its own window."""
        panel, key = self.panel, self._key
        if panel is None or key is None:
            return
        self.panel = None
        self._stack.removeWidget(panel)
        window = ConsoleWindow(panel)
        self.windows[key] = window
        window.closed.connect(functools.partial(self._window_closed, key))
        window.fit_to_guest()
        window.show()
        if full_screen:
            panel.full_screen_action.setChecked(True)
        self._show_idle()

    def _window_closed(self, key: VmKey) -> None:
        self.windows.pop(key, None)  # the window deletes itself
        if key == self._key:
            self._show_idle()

    def _close_embedded(self) -> None:
        panel, self.panel = self.panel, None
        if panel is None:
            return
        self._stack.removeWidget(panel)
        run_for(None, panel.close_console(), "close the console")
        panel.deleteLater()

    def close_all(self) -> None:
        """The main window is closing: end every console."""
        self._close_embedded()
        for window in list(self.windows.values()):
            window.close()
