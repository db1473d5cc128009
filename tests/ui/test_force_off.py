"""Force Off asks first (and can stop asking); a shutdown that does not happen offers it."""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from tests.ui.conftest import run_until, wait_dialog
from vmgui.settings import Settings
from vmgui.ui.force_off import (
    FORCE_OFF,
    FORCE_RESET,
    confirm_force_off,
    confirm_force_reset,
    offer_force_off,
)


def _box(parent: QWidget, name: str) -> QMessageBox | None:
    box = parent.findChild(QMessageBox, name)
    return box if box is not None and box.isVisible() else None


def _click(box: QMessageBox, text: str) -> None:
    next(b for b in box.buttons() if b.text().replace("&", "") == text).click()


def _parent(qtbot: Any) -> QWidget:
    w = QWidget()
    qtbot.addWidget(w)
    w.show()
    return w


def test_force_off_asks_and_dont_ask_again_is_saved(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    parent, settings, saved = _parent(qtbot), Settings(), []
    task = asyncio.ensure_future(confirm_force_off(parent, "web", settings, lambda: saved.append(1)))
    box = wait_dialog(qt_loop, lambda: _box(parent, "confirmForceOff"))
    assert box.text() == "Force off “web”?" and "unsaved data" in box.informativeText()
    _click(box, "Cancel")
    assert qt_loop.run_until_complete(task) is False and settings.confirm_force_off

    task = asyncio.ensure_future(confirm_force_off(parent, "web", settings, lambda: saved.append(1)))
    box = wait_dialog(qt_loop, lambda: _box(parent, "confirmForceOff"), previous=box)
    box.checkBox().setChecked(True)
    _click(box, FORCE_OFF)
    assert qt_loop.run_until_complete(task) is True
    assert settings.confirm_force_off is False and saved == [1]
    # no question any more
    assert qt_loop.run_until_complete(confirm_force_off(parent, "web", settings, lambda: None))


def test_force_reset_asks_and_shares_dont_ask_again_with_force_off(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    parent, settings, saved = _parent(qtbot), Settings(), []
    task = asyncio.ensure_future(confirm_force_reset(parent, "web", settings, lambda: saved.append(1)))
    box = wait_dialog(qt_loop, lambda: _box(parent, "confirmForceReset"))
    assert box.text() == "Force reset “web”?" and box.windowTitle() == FORCE_RESET
    assert "unsaved data" in box.informativeText() and "Reboot asks" in box.informativeText()
    box.checkBox().setChecked(True)
    _click(box, FORCE_RESET)
    assert qt_loop.run_until_complete(task) is True
    assert settings.confirm_force_off is False and saved == [1]
    # one "Don't ask again" for both forced actions
    assert qt_loop.run_until_complete(confirm_force_off(parent, "web", settings, lambda: None))


def test_force_off_is_offered_only_when_the_vm_still_runs(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    parent = _parent(qtbot)
    running = [True]
    task = asyncio.ensure_future(offer_force_off(parent, "db", lambda: running[0], 0.2))
    box = wait_dialog(qt_loop, lambda: _box(parent, "offerForceOff"))
    assert "still running" in box.text() and "asked to shut down" in box.text()
    _click(box, FORCE_OFF)
    assert qt_loop.run_until_complete(task) is True

    running[0] = False  # it shut down meanwhile: nothing is asked
    assert qt_loop.run_until_complete(offer_force_off(parent, "db", lambda: running[0], 0.2)) is False
    run_until(qt_loop, lambda: _box(parent, "offerForceOff") is None, what="no box")
