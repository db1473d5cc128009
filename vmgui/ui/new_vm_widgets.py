"""Small widgets the wizard and the Edit dialog share: path and number fields, messages, a banner."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QWidget,
)

ERROR_COLOUR = "#c62828"
HINT_COLOUR = "#5f6368"


class PathField(QWidget):
    """A file path typed or chosen with a (non-blocking) file dialog."""

    textChanged = Signal(str)

    def __init__(
        self,
        title: str,
        name_filter: str = "",
        save: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._title = title
        self._filter = name_filter
        self._save = save
        self.edit = QLineEdit()
        self.edit.setClearButtonEnabled(True)
        self.edit.textChanged.connect(self.textChanged)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._choose)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        self.dialog: QFileDialog | None = None

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)

    def setPlaceholderText(self, text: str) -> None:
        self.edit.setPlaceholderText(text)

    def set_browsable(self, browsable: bool, why: str = "") -> None:
        """Remote connections: their files are on another machine, so no local file dialog."""
        self.browse.setEnabled(browsable)
        self.browse.setToolTip("" if browsable else why)

    def _choose(self) -> None:
        dialog = QFileDialog(self, self._title)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if self._filter:
            dialog.setNameFilters([self._filter, "All files (*)"])
        if self._save:
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        if self.text():
            dialog.selectFile(self.text())
        dialog.fileSelected.connect(self.edit.setText)
        self.dialog = dialog
        dialog.open()  # window-modal, no nested event loop


def message_label(colour: str = ERROR_COLOUR, name: str = "") -> QLabel:
    """A word-wrapped, selectable one-liner, hidden while empty (see `show_message`)."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(f"color: {colour}")
    if name:
        label.setObjectName(name)
    label.hide()
    return label


def show_message(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


class WarningBanner(QFrame):
    """A yellow box with a warning icon, as on the host page's "emulated" verdict."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setStyleSheet(
            f"#{name} {{ background: #fef7e0; border: 1px solid #f9ab00; border-radius: 6px; }}"
            f" #{name} QLabel {{ color: #202124; }}"
        )
        icon = QLabel()
        pixmap = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        icon.setPixmap(pixmap.pixmap(24, 24))
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout(self)
        row.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.label, 1)
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def set_text(self, text: str) -> None:
        self.label.setText(text)
        self.setVisible(bool(text))


class ExplainingSpinBox(QSpinBox):
    """A QSpinBox that says why typed input was refused instead of silently keeping the old value.

    Qt drops a keystroke that makes the number too large and reverts a too-small number when
    editing ends, without a word. This emits `problemChanged` with the sentence (or "" once the
    user types again); the owner shows it next to the field.
    """

    problemChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reverted = ""
        line = self.lineEdit()
        assert line is not None
        line.textEdited.connect(lambda _t: self.problemChanged.emit(""))
        self.editingFinished.connect(self._editing_finished)

    def _typed(self, text: str) -> str:
        return text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()

    def _range(self) -> str:
        unit = self.suffix()
        return f"{self.minimum():,}{unit} to {self.maximum():,}{unit}"

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        result = super().validate(text, pos)
        if result[0] == QValidator.State.Invalid and self._typed(text):
            self.problemChanged.emit(
                f"{self._typed(text)} is out of range: enter {self._range()}."
            )
        return result

    def fixup(self, text: str) -> str:
        typed = self._typed(text)
        if typed:
            self._reverted = (
                f"{typed} is out of range ({self._range()}); "
                f"kept {self.value():,}{self.suffix()}."
            )
        return str(super().fixup(text) or text)

    def _editing_finished(self) -> None:
        if self._reverted:
            self.problemChanged.emit(self._reverted)
            self._reverted = ""
