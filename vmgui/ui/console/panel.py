"""ConsolePanel: a VM's graphical console and serial terminal as tabs, with the console's tools.

It lives in the details view or, detached, in its own ConsoleWindow. It opens everything through
the Backend protocol (`open_console`, `open_serial`) and `vmgui.console.open_source`, so the same
panel serves the built-in VMM's shared framebuffer and libvirt's VNC consoles.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Coroutine
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QImage, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import Backend, BackendError
from vmgui.console import ConsoleError, open_source
from vmgui.console.source import FramebufferSource
from vmgui.console.terminal import TerminalSession
from vmgui.ui.console.rfb_hooks import decode_jpeg, password_prompt
from vmgui.ui.console.terminal_view import SerialTerminalView
from vmgui.ui.console.view import ConsoleView, Scale
from vmgui.ui.tasks import accepted, run_for

log = logging.getLogger(__name__)

#: The Send Key menu: label -> keys pressed in order and released in reverse.
SEND_KEYS: list[tuple[str, list[str]]] = [
    ("Ctrl+Alt+Del", ["ctrl", "alt", "delete"]),
    ("Ctrl+Alt+Backspace", ["ctrl", "alt", "backspace"]),
    *[(f"Ctrl+Alt+F{n}", ["ctrl", "alt", f"f{n}"]) for n in range(1, 13)],
    ("PrintScreen", ["print"]),
]
GRAPHICS_TAB, SERIAL_TAB = 0, 1


class ConsolePanel(QWidget):
    """Graphics + serial tabs for one VM; `open()` connects, `close_console()` ends both."""

    detachRequested = Signal()
    fullScreenRequested = Signal(bool)

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.source: FramebufferSource | None = None
        self.session: TerminalSession | None = None
        self.file_dialog: QFileDialog | None = None  # the open "Save screenshot" dialog
        self.view = ConsoleView()
        self.terminal = SerialTerminalView()
        self._placeholder = QLabel("No graphical console.")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._graphics = QStackedWidget()
        self._graphics.addWidget(self._placeholder)
        self._graphics.addWidget(self.view)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._graphics, "Display")
        self.tabs.addTab(self.terminal, "Serial")
        self.status = QLabel(self.view.hint())
        self.status.setObjectName("consoleStatus")
        self.toolbar = self._make_toolbar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        self.view.captureChanged.connect(self._capture_changed)
        self.view.message.connect(self.status.setText)
        self.terminal.ended.connect(self._serial_ended)
        self.tabs.currentChanged.connect(self._tab_changed)
        self._tab_changed(self.tabs.currentIndex())

    # ---- tools ------------------------------------------------------------------------------

    def _make_toolbar(self) -> QToolBar:
        bar = QToolBar("Console")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        scale = QActionGroup(self)
        self.fit_action = QAction("Fit", scale, checkable=True, checked=True)
        self.fit_action.setToolTip("Scale the guest's screen to the window, aspect kept")
        self.one_to_one_action = QAction("1:1", scale, checkable=True)
        self.one_to_one_action.setToolTip("One guest pixel per screen pixel")
        # Bound methods, not lambdas holding `self`: Qt would keep the panel alive through them.
        self.fit_action.triggered.connect(self._fit)
        self.one_to_one_action.triggered.connect(self._one_to_one)
        bar.addActions([self.fit_action, self.one_to_one_action])
        self.full_screen_action = QAction("Full screen", self, checkable=True)
        self.full_screen_action.setShortcut(QKeySequence("F11"))
        self.full_screen_action.toggled.connect(self.fullScreenRequested)
        bar.addAction(self.full_screen_action)
        self.resize_action = QAction("Resize guest to window", self, checkable=True, enabled=False)
        self.resize_action.toggled.connect(self.view.set_resize_guest)
        bar.addAction(self.resize_action)
        bar.addSeparator()
        menu = QMenu("Send key", self)
        for label, keys in SEND_KEYS:
            menu.addAction(label, functools.partial(self.view.send_keys, keys))
        self.send_key_button = QToolButton()
        self.send_key_button.setText("Send key")
        self.send_key_button.setMenu(menu)
        self.send_key_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.send_key_menu = menu
        bar.addWidget(self.send_key_button)
        self.screenshot_action = QAction("Screenshot…", self)
        self.screenshot_action.triggered.connect(self._ask_screenshot)
        bar.addAction(self.screenshot_action)
        bar.addSeparator()
        self.detach_action = QAction("Detach", self)
        self.detach_action.setToolTip("Show the console in its own window")
        self.detach_action.triggered.connect(self.detachRequested)
        bar.addAction(self.detach_action)
        return bar

    def _capture_changed(self, _captured: bool) -> None:
        self.status.setText(self.view.hint())

    def _fit(self) -> None:
        self.view.set_scale(Scale.FIT)

    def _one_to_one(self) -> None:
        self.view.set_scale(Scale.ONE_TO_ONE)

    def _tab_changed(self, index: int) -> None:
        graphics = index == GRAPHICS_TAB and self.source is not None
        for action in (self.fit_action, self.one_to_one_action, self.screenshot_action):
            action.setEnabled(graphics)
        self.send_key_button.setEnabled(graphics)
        self.resize_action.setEnabled(graphics and bool(self.source and self.source.can_resize))
        if index == SERIAL_TAB:
            self.terminal.setFocus()

    # ---- opening and closing ----------------------------------------------------------------

    async def open(self, backend: Backend, vm_id: str) -> None:
        """Connect the graphical console and the serial terminal; problems become sentences."""
        try:
            endpoints = await backend.open_console(vm_id)
        except BackendError as e:
            self._show_problem(str(e))
            return
        if endpoints.graphics is None:
            self._show_problem(
                endpoints.problem or "This virtual machine has no graphical console."
            )
        else:
            try:
                source = open_source(
                    endpoints.graphics,
                    ask_password=password_prompt(self, self.title),
                    jpeg_decoder=decode_jpeg,
                )
                await source.start()
            except ConsoleError as e:
                log.info("console of %s: %s", vm_id, e, exc_info=True)
                self._show_problem(str(e))
            else:
                self.show_source(source)
        if endpoints.has_serial:
            try:
                stream = await backend.open_serial(vm_id)
            except BackendError as e:
                self.terminal.model.feed(f"{e}\r\n".encode())
                self.terminal.model_changed()
            else:
                self.show_serial(TerminalSession(stream, self.terminal.model))
        if self.source is None and endpoints.has_serial:
            self.tabs.setCurrentIndex(SERIAL_TAB)

    def show_source(self, source: FramebufferSource) -> None:
        """Display an already started source (the panel closes it in close_console)."""
        self.source = source
        self.view.attach(source)
        self.view.sourceClosed.connect(self._graphics_ended)
        self._graphics.setCurrentWidget(self.view)
        self.tabs.setCurrentIndex(GRAPHICS_TAB)
        self._tab_changed(self.tabs.currentIndex())
        self.status.setText(self.view.hint())

    def show_serial(self, session: TerminalSession) -> None:
        self.session = session
        self.terminal.attach(session)
        session.start()

    def _show_problem(self, sentence: str) -> None:
        self._placeholder.setText(sentence)
        self._graphics.setCurrentWidget(self._placeholder)
        self.status.setText(sentence)

    def _graphics_ended(self, reason: str) -> None:
        self.source = None
        self._tab_changed(self.tabs.currentIndex())
        self._show_problem(reason or "The console was closed.")

    def _serial_ended(self, reason: str) -> None:
        self.terminal.model.feed(f"\r\n[{reason}]\r\n".encode())
        self.terminal.model_changed()

    def close_console(self) -> Coroutine[Any, Any, None]:
        """Detach the widgets now; the returned coroutine closes the source and the session.

        Splitting it lets a closing window delete its widgets at once: the coroutine touches
        neither the panel nor its views.
        """
        source, self.source = self.source, None
        session, self.session = self.session, None
        if source is not None:
            self.view.attach(None)  # drop the image before the pixels are unmapped
        return _close_quietly(source, session)

    # ---- screenshots ------------------------------------------------------------------------

    def _ask_screenshot(self) -> None:
        image = self.view.screenshot()
        if image is None:
            return
        run_for(self, self._save_screenshot_as(image), "save the screenshot")

    async def _save_screenshot_as(self, image: QImage) -> None:
        """The file dialog is awaited (exec_async), not run in a nested loop: the console
        keeps updating while it is open."""
        dialog = QFileDialog(
            self, "Save screenshot", f"{self.title or 'console'}.png", "PNG images (*.png)"
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        self.file_dialog = dialog
        try:
            if await accepted(dialog) and dialog.selectedFiles():
                self.save_screenshot(dialog.selectedFiles()[0], image)
        finally:
            dialog.deleteLater()

    def save_screenshot(self, path: str, image: QImage | None = None) -> bool:
        """Write the guest's screen (guest pixels, not the scaled view) as PNG."""
        image = image or self.view.screenshot()
        if image is None or not image.save(path, "PNG"):  # type: ignore[call-overload]
            self.status.setText(f"Could not save the screenshot to {path}.")
            return False
        self.status.setText(f"Screenshot saved to {path}.")
        return True


async def _close_quietly(source: FramebufferSource | None, session: TerminalSession | None) -> None:
    if source is not None:
        try:
            await source.close()
        except Exception:  # closing goes on (the session below); a bug is logged
            log.exception("closing the console source failed")
    if session is not None:
        await session.close()


class ConsoleWindow(QMainWindow):
    """A detached console: the panel in its own window; closing the window closes the console."""

    closed = Signal()

    def __init__(self, panel: ConsolePanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.setWindowTitle(f"{panel.title} – console" if panel.title else "Console")
        self.setCentralWidget(panel)
        panel.detach_action.setVisible(False)
        panel.fullScreenRequested.connect(self._full_screen)

    def fit_to_guest(self) -> None:
        """Size the window so the console shows the whole guest screen at the current scale."""
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        screen = self.screen().availableSize() if self.screen() else None
        size = self.sizeHint()
        if screen is not None:
            size = size.boundedTo(screen)
        self.resize(size)

    def _full_screen(self, on: bool) -> None:
        if on:
            self.showFullScreen()
            self.panel.view.set_scale(Scale.FIT)
            self.panel.fit_action.setChecked(True)
        else:
            self.showNormal()

    def closeEvent(self, event: QCloseEvent) -> None:
        # Outlives the window on purpose (its widgets are going): owned by nobody, logged.
        run_for(None, self.panel.close_console(), "close the console")
        self.closed.emit()
        super().closeEvent(event)
        self.deleteLater()
