"""The Add Connection dialog: a placeholder that reads as a hint, errors that go away."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from vmgui.ui.dialogs import URI_PRESETS, AddConnectionDialog


def test_placeholder_is_a_hint_and_errors_clear_when_a_preset_is_picked(qtbot: QtBot) -> None:
    d = AddConnectionDialog([])
    qtbot.addWidget(d)
    d.show()
    line = d.uri_box.lineEdit()
    assert line is not None and line.text() == ""
    hint = line.placeholderText()
    assert hint not in URI_PRESETS and not hint.startswith("qemu")  # not mistaken for a value
    ok = d.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok is not None
    ok.click()  # nothing typed
    assert d.error_label.isVisible() and d.isVisible()
    d.uri_box.setCurrentIndex(URI_PRESETS.index("qemu:///session"))
    assert not d.error_label.isVisible()  # the old complaint no longer applies
    qtbot.keyClicks(line, " x")
    ok.click()
    assert d.error_label.isVisible()
    qtbot.keyClicks(line, "y")
    assert not d.error_label.isVisible()
