"""Small dialogs: add connection, credentials.

Each is opened with `vmgui.ui.tasks.exec_async` (window-modal `open()`), never `exec()`: a nested
event loop would stall the asyncio tasks that keep the VM list live.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import BackendError, validate_uri
from vmgui.model.credentials import CredentialPrompt

URI_PRESETS = (
    "qemu:///system",
    "qemu:///session",
    "qemu+ssh://host/system",
    "qemu+tcp://host/system",
    "test:///default",
)


def uri_problem(uri: str, existing: list[str]) -> str:
    """Why `uri` cannot be added, or "" when it can (checked before anything is saved).

    The rule is the backends' own (`validate_uri`), so the dialog never accepts a URI the
    connection would then refuse.
    """
    if not uri:
        return "Enter a connection URI, for example qemu:///system."
    try:
        validate_uri(uri)
    except BackendError as exc:
        return str(exc)
    if uri in existing:
        return f"{uri} is already in the list."
    return ""


class AddConnectionDialog(QDialog):
    """URI entry with presets; refuses bad input inline so what was typed is never lost."""

    def __init__(self, existing: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add Connection")
        self._existing = existing
        self.uri_box = QComboBox()
        self.uri_box.setEditable(True)
        self.uri_box.addItems(URI_PRESETS)
        self.uri_box.setCurrentText("")
        line = self.uri_box.lineEdit()
        assert line is not None
        line.setPlaceholderText("Type a libvirt URI, or pick one from the list")
        self.uri_box.currentTextChanged.connect(self._clear_error)  # typed or picked
        self.uri_box.setMinimumWidth(360)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c62828")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert ok is not None
        ok.setText("Connect")
        self.buttons.accepted.connect(self._check_and_accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("URI:", self.uri_box)
        hint = QLabel("libvirt URIs: qemu:///system, qemu+ssh://user@host/system, test:///default")
        hint.setStyleSheet("color: gray")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def uri(self) -> str:
        return self.uri_box.currentText().strip()

    def _clear_error(self, _text: str = "") -> None:
        self.error_label.clear()
        self.error_label.hide()

    def _check_and_accept(self) -> None:
        problem = uri_problem(self.uri(), self._existing)
        if problem:
            self.error_label.setText(problem)
            self.error_label.show()
            return
        self.accept()


class CredentialsDialog(QDialog):
    """One field per prompt libvirt's openAuth asks for (user name, password, passphrase...)."""

    def __init__(
        self, uri: str, prompts: Sequence[CredentialPrompt], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Authentication Required")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{uri} asks for credentials:"))
        form = QFormLayout()
        self.fields: list[QLineEdit] = []
        for p in prompts:
            edit = QLineEdit(p.default)
            if p.secret:
                edit.setEchoMode(QLineEdit.EchoMode.Password)
            form.addRow(p.prompt.rstrip(": ") + ":", edit)
            self.fields.append(edit)
        layout.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def answers(self) -> list[str]:
        return [f.text() for f in self.fields]
