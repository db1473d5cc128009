"""Preferences: stats interval and visible list columns (persisted by the caller via settings)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vmgui.settings import ALL_COLUMNS, MAX_STATS_INTERVAL_S, MIN_STATS_INTERVAL_S, Settings
from vmgui.ui.vm_model import COLUMN_KEYS, COLUMN_TITLES

_TITLE_BY_KEY = {key: COLUMN_TITLES[col] for col, key in COLUMN_KEYS.items()}


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.interval = QSpinBox()
        self.interval.setRange(MIN_STATS_INTERVAL_S, MAX_STATS_INTERVAL_S)
        self.interval.setSuffix(" s")
        self.interval.setValue(settings.stats_interval_s)
        form = QFormLayout()
        form.addRow("Update statistics every:", self.interval)
        columns = QGroupBox("Columns in the VM list")
        col_layout = QVBoxLayout(columns)
        self.column_boxes: dict[str, QCheckBox] = {}
        for key in ALL_COLUMNS:
            box = QCheckBox(_TITLE_BY_KEY[key])
            box.setChecked(key in settings.visible_columns)
            if key == "name":
                box.setEnabled(False)  # rows need a name to be recognisable
                box.setChecked(True)
            col_layout.addWidget(box)
            self.column_boxes[key] = box
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(columns)
        layout.addWidget(buttons)

    def apply_to(self, settings: Settings) -> None:
        settings.stats_interval_s = self.interval.value()
        settings.visible_columns = [k for k, b in self.column_boxes.items() if b.isChecked()]
