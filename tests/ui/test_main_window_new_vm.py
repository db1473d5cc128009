"""The main window's New VM action and the emulated-host warning on Start, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.fixtures.libvirtd import write_test_driver_xml
from tests.support import need_kvm
from tests.ui.conftest import run, run_until
from vmgui.model import VmConfig
from vmgui.ui.main_window import MainWindow
from vmgui.ui.new_vm_wizard import NewVmWizard
from vmgui.ui.vm_model import Column


def _top_level(kind: type, name: str = "") -> Any:
    for w in QApplication.topLevelWidgets():
        if isinstance(w, kind) and w.isVisible() and (not name or w.objectName() == name):
            return w
    return None


def test_ctrl_n_opens_the_wizard_on_the_connection_in_view(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    uri = f"test://{write_test_driver_xml(tmp_path / 'node.xml', 2)}"
    w: MainWindow = make_window([uri])
    run_until(qt_loop, lambda: w.model.rowCount() == 2, what="rows")
    QTest.keyClick(w.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    run_until(qt_loop, lambda: _top_level(NewVmWizard) is not None, what="the wizard")
    wizard = _top_level(NewVmWizard)
    assert wizard.parentWidget() is w  # opened with open(), not exec(): the loop kept running
    wizard.reject()
    run_until(qt_loop, lambda: _top_level(NewVmWizard) is None, what="the wizard to close")
    assert w.last_error == ""


def test_starting_a_kvm_vm_on_this_emulated_host_asks_first(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    need_kvm()  # the warning follows the real host measurement
    uri = f"test://{write_test_driver_xml(tmp_path / 'node.xml', 0)}"
    w: MainWindow = make_window([uri])
    run_until(qt_loop, lambda: w.manager.backend(uri) is not None, what="the backend")
    backend = w.manager.backend(uri)
    assert backend is not None
    run_until(
        qt_loop,
        lambda: (s := w.manager.status(uri)) is not None and s.state.value == "connected",
        what="connected",
    )
    info = run(
        qt_loop, backend.define(VmConfig(name="fast-or-not", memory_mib=64, domain_type="kvm"))
    )
    run_until(qt_loop, lambda: w.select_vm((uri, info.vm_id)), what="the new row")
    state = lambda: w.proxy.index(w.table.currentIndex().row(), Column.STATE).data()  # noqa: E731
    assert state() == "shut off"

    w.vm_actions.actions["start"].trigger()
    run_until(
        qt_loop,
        lambda: _top_level(QMessageBox, "emulationWarning") is not None,
        what="the emulation warning",
        timeout=30,
    )
    box = _top_level(QMessageBox, "emulationWarning")
    assert "fast-or-not" in box.text() and "TCG" in box.informativeText()
    box.button(QMessageBox.StandardButton.Cancel).click()
    run_until(qt_loop, lambda: w.vm_actions.actions["start"].isEnabled(), what="start re-enabled")
    run(qt_loop, asyncio.sleep(0.3))
    assert state() == "shut off", "Cancel must leave the VM as it was"
    assert w.last_error == ""
