"""The Delete VM confirmation: every disk file or volume listed with its own checkbox.

Nothing is deleted unless the user presses the destructive button. Storage the backend refuses
(a host device, a folder, a missing file) is shown disabled with the reason; storage another VM
also uses is shown with a warning and left unticked, as virt-manager does.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from vmgui.model import StorageItem

WARNING_STYLE = "color: #b45309"
NOTE_STYLE = "color: gray"


def _item_note(item: StorageItem) -> tuple[str, str]:
    """(text, style) under an item's checkbox; empty text when there is nothing to say."""
    if item.used_by:
        return "Also used by " + ", ".join(item.used_by) + ": deleting it breaks them.", WARNING_STYLE
    if item.note:
        return item.note[0].upper() + item.note[1:] + ".", NOTE_STYLE
    if item.is_cdrom:
        return "Installation media: usually kept.", NOTE_STYLE
    return "", NOTE_STYLE


class DeleteVmDialog(QDialog):
    def __init__(
        self,
        vm_name: str,
        storage: Sequence[StorageItem] = (),
        problem: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Delete Virtual Machine")
        text = QLabel(
            f"Delete the virtual machine “{vm_name}”?\n"
            "Its definition is removed; this cannot be undone."
        )
        self.storage_boxes: dict[str, QCheckBox] = {}
        self.notes: dict[str, QLabel] = {}
        group = QGroupBox("Also delete its storage")
        grid = QGridLayout(group)
        for item in storage:
            box = QCheckBox(f"{item.device}: {item.path}" if item.device else item.path)
            box.setToolTip(item.path)
            box.setChecked(item.suggested)
            box.setEnabled(item.deletable)
            box.toggled.connect(self._relabel)
            grid.addWidget(box, 2 * len(self.storage_boxes), 0)
            self.storage_boxes[item.path] = box
            note_text, style = _item_note(item)
            note = QLabel(note_text)
            note.setStyleSheet(style)
            note.setWordWrap(True)
            note.setVisible(bool(note_text))
            grid.addWidget(note, 2 * len(self.notes) + 1, 0)
            self.notes[item.path] = note
        if not storage:
            empty = QLabel(problem or "This VM has no disk images.")
            empty.setStyleSheet(NOTE_STYLE)
            empty.setWordWrap(True)
            grid.addWidget(empty, 0, 0)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.delete_button = self.buttons.addButton(
            "Delete", QDialogButtonBox.ButtonRole.DestructiveRole
        )
        self.delete_button.clicked.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        assert cancel is not None
        cancel.setDefault(True)  # Enter must not delete anything
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(group)
        layout.addWidget(self.buttons)
        self._relabel()

    def _relabel(self, *_: object) -> None:
        n = len(self.chosen_paths())
        if n:
            noun = "file" if n == 1 else "files"
            self.delete_button.setText(f"Delete VM and {n} storage {noun}")
        else:
            self.delete_button.setText("Delete VM only" if self.storage_boxes else "Delete")

    def chosen_paths(self) -> list[str]:
        return [p for p, box in self.storage_boxes.items() if box.isChecked() and box.isEnabled()]
