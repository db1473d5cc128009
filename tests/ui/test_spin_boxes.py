"""Number fields say why typed input was refused, instead of silently keeping the old value."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from vmgui.ui.new_vm_pages import Connection, ResourcesPage, WizardState


def test_memory_field_explains_refused_input(qtbot: QtBot) -> None:
    state = WizardState([Connection("test:///default", "test", None)])  # type: ignore[arg-type]
    page = ResourcesPage(state)
    qtbot.addWidget(page)
    page.show()
    top = page.memory.maximum()
    page.memory.setFocus()
    page.memory.selectAll()
    qtbot.keyClicks(page.memory, str(top * 10))  # one digit too many: Qt drops the keystroke
    assert page.input_problem.isVisible()
    assert f"{top:,} MiB" in page.input_problem.text()

    page.memory.selectAll()
    qtbot.keyClicks(page.memory, "5")  # below the minimum: reverted when editing ends
    assert not page.input_problem.isVisible()  # typing again clears the old sentence
    qtbot.keyClick(page.memory, Qt.Key.Key_Return)
    assert page.input_problem.isVisible()
    text = page.input_problem.text()
    assert "5" in text and "16" in text and f"kept {page.memory.value():,} MiB" in text
