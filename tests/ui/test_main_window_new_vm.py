"""The main window's New VM action, and Start of a KVM VM asking first where ring 0 is
emulated, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.fixtures.libvirtd import write_test_driver_xml
from tests.host.verdicts import measured_status
from tests.support import need_kvm
from tests.ui.conftest import run, run_until
from vmgui.model import VmConfig
from vmgui.model.host import HostStatus, Verdict
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


def _start_kvm_vm(
    make_window: Any,
    qt_loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    status: HostStatus | None,
) -> tuple[MainWindow, HostStatus, Callable[[], Any]]:
    """A shut-off type='kvm' VM selected in a new window, Start triggered: (window, the host
    status Start judges by, the row's state). `status` None: the window probes this host."""
    uri = f"test://{write_test_driver_xml(tmp_path / 'node.xml', 0)}"
    w: MainWindow = make_window([uri])
    if status is not None:
        w.host_status.set(status)
    judged = run(qt_loop, w.host_status())  # what Start will use: measured once, here
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
    return w, judged, state


def _expect_start_for(
    qt_loop: asyncio.AbstractEventLoop, w: MainWindow, status: HostStatus, state: Callable[[], Any]
) -> None:
    """Emulated ring 0: Start asks first, and Cancel leaves the VM as it was. Hardware-assisted:
    Start starts at once, without a question."""
    if status.verdict is Verdict.EMULATED:
        run_until(
            qt_loop,
            lambda: _top_level(QMessageBox, "emulationWarning") is not None,
            what="the emulation warning",
            timeout=30,
        )
        box = _top_level(QMessageBox, "emulationWarning")
        assert "fast-or-not" in box.text() and "TCG" in box.informativeText()
        box.button(QMessageBox.StandardButton.Cancel).click()
        run_until(
            qt_loop, lambda: w.vm_actions.actions["start"].isEnabled(), what="start re-enabled"
        )
        run(qt_loop, asyncio.sleep(0.3))
        assert state() == "shut off", "Cancel must leave the VM as it was"
    else:
        assert status.verdict is Verdict.HARDWARE_ASSISTED, status.reason
        run_until(qt_loop, lambda: state() == "running", what="the VM to run", timeout=30)
        assert _top_level(QMessageBox, "emulationWarning") is None
    assert w.last_error == ""


def test_starting_a_kvm_vm_follows_this_hosts_measurement(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    need_kvm()  # the window probes this host for real
    w, status, state = _start_kvm_vm(make_window, qt_loop, tmp_path, None)
    _expect_start_for(qt_loop, w, status, state)


@pytest.mark.parametrize("verdict", [Verdict.EMULATED, Verdict.HARDWARE_ASSISTED])
def test_starting_a_kvm_vm_on_a_measured_host(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, tmp_path: Path, verdict: Verdict
) -> None:
    """Both verdicts a measurement gives, whichever this machine has."""
    w, status, state = _start_kvm_vm(make_window, qt_loop, tmp_path, measured_status(verdict))
    assert status.verdict is verdict
    _expect_start_for(qt_loop, w, status, state)
