"""How a failure reaches a person: one sentence, with the traceback one click away.

`readable` turns an exception into the sentence; `log_failure` writes it to the log (a
BackendError is expected and gets one line, anything else its full traceback, so a bug is never
only a dialog); `ErrorDialog` shows the sentence and keeps the traceback behind "Show Details".
"""

from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from vmgui.backends.base import BackendError


def readable(exc: BaseException) -> str:
    """A sentence for the user: BackendError text as is, anything else without a traceback."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def expected(exc: BaseException) -> bool:
    """Failures the backends describe themselves (no traceback needed to understand them)."""
    return isinstance(exc, BackendError | OSError)


def details_of(exc: BaseException) -> str:
    """The traceback, for the Details button (empty for expected failures)."""
    if expected(exc):
        return ""
    return "".join(traceback.format_exception(exc)).rstrip()


def log_failure(log: logging.Logger, sentence: str, exc: BaseException) -> None:
    """Log before the user sees `sentence`: a traceback for anything unexpected."""
    if expected(exc):
        log.info("%s", sentence)
    else:
        log.error("%s", sentence, exc_info=exc)


class ErrorDialog(QMessageBox):
    """Non-blocking warning: the sentence, and "Show Details..." with the traceback if any."""

    def __init__(self, sentence: str, details: str = "", parent: QWidget | None = None) -> None:
        super().__init__(QMessageBox.Icon.Warning, "vmgui", sentence,
                         QMessageBox.StandardButton.Ok, parent)
        self.setObjectName("errorDialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)  # never ends the app
        if details:
            self.setDetailedText(details)


def show_error_dialog(parent: QWidget | None, sentence: str, details: str = "") -> ErrorDialog:
    box = ErrorDialog(sentence, details, parent)
    box.open()
    return box
