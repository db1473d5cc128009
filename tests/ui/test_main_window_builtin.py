""""This computer (built-in)" in the real main window with real vmgui-vmm processes: the list,
Start and graceful Shut down from the GUI, VMs outliving the GUI and found again, a killed VMM
shown as crashed with its log's last lines, and Start working again afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.fixtures.builtin import BuiltinEnv
from tests.support import need_kvm
from tests.ui.conftest import run, run_until
from vmgui.backends.base import BUILTIN_URI
from vmgui.backends.builtin.launcher import RuntimeFiles
from vmgui.model import VmConfig
from vmgui.ui.main_window import MainWindow
from vmgui.ui.vm_model import Column

Build = Callable[..., Path]


def accept_emulation_warnings(qt_loop: asyncio.AbstractEventLoop) -> None:
    """Where this host emulates guest ring 0, Start asks first; our tiny guests do not mind."""
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMessageBox) and w.objectName() == "emulationWarning" and w.isVisible():
            w.buttons()[0].click()


def row_state(w: MainWindow, vm_id: str) -> str:
    row = w.model.row_of((BUILTIN_URI, vm_id))
    if row < 0:
        return ""
    return str(w.model.index(row, Column.STATE).data())


def wait_state(qt_loop: asyncio.AbstractEventLoop, w: MainWindow, vm_id: str, state: str,
               timeout: float = 30) -> None:
    def reached() -> bool:
        accept_emulation_warnings(qt_loop)
        return row_state(w, vm_id) == state

    run_until(qt_loop, reached, timeout=timeout, what=f"the row to show {state!r}")


def open_builtin(make_window: Any, qt_loop: asyncio.AbstractEventLoop) -> MainWindow:
    w: MainWindow = make_window([])
    run_until(
        qt_loop,
        lambda: (s := w.manager.status(BUILTIN_URI)) is not None and s.state.value == "connected",
        what="the built-in connection",
    )
    w.select_connection(BUILTIN_URI)
    return w


def test_this_computer_lists_builtin_vms_with_the_host_beside(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, builtin_env: BuiltinEnv,
    build_guest: Build
) -> None:
    w = open_builtin(make_window, qt_loop)
    assert w.pages.currentWidget() is w.vm_page
    backend = w.manager.backend(BUILTIN_URI)
    assert backend is not None
    info = run(qt_loop, backend.define(VmConfig(
        name="listed", memory_mib=32, kernel=str(build_guest("power_button")), network="none")))
    run_until(qt_loop, lambda: w.select_vm((BUILTIN_URI, info.vm_id)), what="the new row")
    assert row_state(w, info.vm_id) == "shut off"
    w.builtin_tabs.setCurrentIndex(1)  # the host check, one click away
    assert w.pages.currentWidget() is w.host_page
    w.builtin_tabs.setCurrentIndex(0)
    assert w.pages.currentWidget() is w.vm_page and w.proxy.rowCount() == 1


@pytest.mark.slow
def test_gui_start_shutdown_quit_reattach_crash_and_start_again(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, builtin_env: BuiltinEnv,
    build_guest: Build
) -> None:
    need_kvm()
    w = open_builtin(make_window, qt_loop)
    backend = w.manager.backend(BUILTIN_URI)
    assert backend is not None
    info = run(qt_loop, backend.define(VmConfig(
        name="guest", memory_mib=32, kernel=str(build_guest("power_button")), network="none")))
    vm_id = info.vm_id
    run_until(qt_loop, lambda: w.select_vm((BUILTIN_URI, vm_id)), what="the new row")

    # Start and a graceful shut down, both from the GUI's actions.
    w.vm_actions.actions["start"].trigger()
    wait_state(qt_loop, w, vm_id, "running")
    files = RuntimeFiles.for_vm(vm_id)
    run_until(qt_loop, lambda: files.serial_file.exists()
              and "waiting for power button" in files.serial_file.read_text(), what="the guest")
    # Two stats ticks later the details show VM exits per second by reason.
    run_until(qt_loop, lambda: not w.details.exits_graph.isHidden(), what="the Exits/s graph")
    labels = [series.label for series in w.details.exits_graph.series()]
    assert labels[0] == "all" and len(labels) > 1
    w.vm_actions.actions["shutdown"].trigger()
    wait_state(qt_loop, w, vm_id, "shut off")
    assert "power button" in files.serial_file.read_text().splitlines()[-1]

    # Quit the GUI with the VM running: the VMM lives on.
    w.vm_actions.actions["start"].trigger()
    wait_state(qt_loop, w, vm_id, "running")
    pid = int(files.pid.read_text().split()[0])
    w.close()
    run(qt_loop, w.shutdown())
    run(qt_loop, asyncio.sleep(0.3))
    assert os.path.exists(f"/proc/{pid}")

    # Start the GUI again: it re-attaches; the console endpoint is there.
    w2 = open_builtin(make_window, qt_loop)
    wait_state(qt_loop, w2, vm_id, "running", timeout=10)
    backend2 = w2.manager.backend(BUILTIN_URI)
    assert backend2 is not None
    console = run(qt_loop, backend2.open_console(vm_id))
    assert console.graphics is not None

    # kill -9 of the VMM: the row shows crashed, with the log's last lines.
    with files.log.open("a") as f:
        f.write("vmgui-vmm: something went badly wrong\n")
    os.kill(pid, signal.SIGKILL)
    wait_state(qt_loop, w2, vm_id, "crashed")
    row = w2.model.row_of((BUILTIN_URI, vm_id))
    tip = w2.model.index(row, Column.STATE).data(Qt.ItemDataRole.ToolTipRole)
    assert "something went badly wrong" in tip

    # Start works again.
    run_until(qt_loop, lambda: w2.select_vm((BUILTIN_URI, vm_id)), what="the row")
    w2.vm_actions.actions["start"].trigger()
    wait_state(qt_loop, w2, vm_id, "running")
    w2.settings.confirm_force_off = False  # its question has a test of its own
    w2.vm_actions.actions["force_off"].trigger()
    wait_state(qt_loop, w2, vm_id, "shut off")

