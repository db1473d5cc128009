"""The 1,000-domain test:/// connection through the real window: fills, sorts, filters, keeps
its settings, and shows bad input as a message without losing anything."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import run, run_until, spin, wait_dialog
from vmgui.model import VmState
from vmgui.settings import Settings, config_path, load_settings
from vmgui.ui.main_window import ALL_URI, BUILTIN_URI, MainWindow
from vmgui.ui.vm_model import VM_ROLE, Column

MOD = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def _names(w: MainWindow, limit: int = 10) -> list[str]:
    return [w.proxy.index(r, Column.NAME).data() for r in range(min(limit, w.proxy.rowCount()))]


def test_1000_domains_fill_sort_filter(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, test_driver_1000: Path
) -> None:
    uri = f"test://{test_driver_1000}"
    t0 = time.monotonic()
    w: MainWindow = make_window([uri])
    run_until(qt_loop, lambda: w.model.rowCount() == 1000, what="1,000 rows")
    fill_s = time.monotonic() - t0
    assert fill_s < 10, fill_s
    assert "Connected to" in w.statusBar().currentMessage()
    assert w.summary_label.text().startswith("1000 of 1000 VMs")
    assert _names(w, 3) == ["vm0000", "vm0001", "vm0002"]

    # Sort through the header, as a click would; descending by memory, then by state.
    w.table.horizontalHeader().setSortIndicator(Column.MEMORY, Qt.SortOrder.DescendingOrder)
    mems = [w.proxy.index(r, 0).data(VM_ROLE).memory_kib for r in range(1000)]
    assert mems == sorted(mems, reverse=True) and mems[0] == (256 + 7 * 128) * 1024
    w.table.horizontalHeader().setSortIndicator(Column.STATE, Qt.SortOrder.AscendingOrder)
    states = [w.proxy.index(r, 0).data(VM_ROLE).state for r in range(1000)]
    order = list(VmState)
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)

    # Filter box: by name, by virsh state word; clearing brings everything back.
    w.filter_box.setText("vm099")
    assert w.proxy.rowCount() == 10
    w.filter_box.setText("paused")
    assert w.proxy.rowCount() == 125  # one in eight domains of the fixture is paused
    assert {w.proxy.index(r, Column.STATE).data() for r in range(125)} == {"paused"}
    w.filter_box.clear()
    assert w.proxy.rowCount() == 1000

    # Selection drives the details view and the per-state actions.
    w.table.horizontalHeader().setSortIndicator(Column.NAME, Qt.SortOrder.AscendingOrder)
    w.table.selectRow(3)  # vm0003 is paused
    assert w.details.overview_labels["Name"].text() == "vm0003"
    acts = w.vm_actions.actions
    assert acts["resume"].isEnabled() and not acts["pause"].isEnabled()
    assert acts["force_off"].isEnabled() and not acts["delete"].isEnabled()
    run_until(qt_loop, lambda: "<name>vm0003</name>" in w.details.xml_view.toPlainText(),
              what="domain XML in the details view")
    assert w.details.xml_view.isReadOnly()
    run_until(qt_loop, lambda: w.details.hardware.topLevelItemCount() > 0, what="hardware rows")

    # The sidebar's built-in entry lists this computer's VMs (none here), the host check a tab away.
    w.select_connection(BUILTIN_URI)
    assert w.pages.currentWidget() is w.vm_page and w.proxy.rowCount() == 0
    w.builtin_tabs.setCurrentIndex(w.builtin_tabs.HOST)
    assert w.pages.currentWidget() is w.host_page
    w.select_connection(uri)
    assert not w.builtin_tabs.isVisible()
    assert w.pages.currentWidget() is w.vm_page and w.proxy.rowCount() == 1000


def test_actions_change_rows_through_events(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, test_driver_1000: Path
) -> None:
    """test:/// emits real lifecycle events; the row follows them and the actions re-enable."""
    w: MainWindow = make_window([f"test://{test_driver_1000}"])
    run_until(qt_loop, lambda: w.model.rowCount() == 1000, what="rows")
    w.table.selectRow(0)  # vm0000, running
    state = lambda: w.proxy.index(0, Column.STATE).data()  # noqa: E731
    QTest.keyClick(w.table, Qt.Key.Key_P, MOD)  # Pause's shortcut, as a user would type it
    run_until(qt_loop, lambda: state() == "paused", what="paused")
    run_until(qt_loop, lambda: w.vm_actions.actions["resume"].isEnabled(), what="resume enabled")
    QTest.keyClick(w.table, Qt.Key.Key_R, MOD)
    run_until(qt_loop, lambda: state() == "running", what="running")
    w.settings.confirm_force_off = False  # its question has a test of its own
    w.vm_actions.actions["force_off"].trigger()
    run_until(qt_loop, lambda: state() == "shut off", what="shut off")
    run_until(qt_loop, lambda: w.vm_actions.actions["start"].isEnabled(), what="start enabled")
    assert not w.vm_actions.actions["pause"].isEnabled()
    assert w.last_error == ""


def test_preferences_persist_and_apply(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, config_home: Path
) -> None:
    w: MainWindow = make_window(["test:///default"])
    w.preferences_action.trigger()
    dialog = wait_dialog(qt_loop, lambda: w.last_dialog)
    dialog.interval.setValue(7)
    dialog.column_boxes["host"].setChecked(False)
    dialog.accept()
    run_until(qt_loop, lambda: load_settings().stats_interval_s == 7, what="saved settings")
    assert w.manager.stats_interval_s == 7
    assert w.table.isColumnHidden(Column.HOST) and not w.table.isColumnHidden(Column.MEMORY)
    saved = json.loads(config_path().read_text())
    assert saved["connections"] == ["test:///default"]
    assert "host" not in saved["visible_columns"]
    w2: MainWindow = make_window(settings=load_settings())
    assert w2.table.isColumnHidden(Column.HOST)


def test_bad_input_gives_a_message_and_loses_nothing(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, config_home: Path
) -> None:
    w: MainWindow = make_window(["test:///default"])
    run_until(qt_loop, lambda: w.model.rowCount() == 1, what="test:///default listed")
    before = config_path().read_text()

    # Malformed URI in the add dialog: inline message, dialog stays open, text kept.
    w.add_connection_action.trigger()
    dialog = wait_dialog(qt_loop, lambda: w.last_dialog)
    dialog.uri_box.setCurrentText("not a uri")
    dialog.buttons.accepted.emit()
    spin(qt_loop, 0.05)
    assert dialog.isVisible() and dialog.uri_box.currentText() == "not a uri"
    assert "contains spaces" in dialog.error_label.text()  # the backend's own rule
    dialog.uri_box.setCurrentText("qemu+carrier-pigeon://host/system")  # was accepted here once
    dialog.buttons.accepted.emit()
    assert "unknown transport 'carrier-pigeon'" in dialog.error_label.text()
    dialog.uri_box.setCurrentText("test:///default")  # duplicate
    dialog.buttons.accepted.emit()
    assert "already in the list" in dialog.error_label.text()
    dialog.reject()
    assert config_path().read_text() == before

    # An unreachable host: a readable status, the existing connection and its VM untouched.
    bad = "qemu+tcp://127.0.0.1:1/system"
    assert w.add_connection(bad) == ""
    run_until(qt_loop, lambda: w.manager.error(bad) != "", what="connection failure")
    assert "Connection refused" in w.manager.error(bad)
    # it never connected: "Could not connect", not "Disconnected"
    run_until(qt_loop, lambda: "Could not connect to " + bad in w.sidebar_item(bad).toolTip(),
              what="sidebar tooltip")
    assert "Traceback" not in w.statusBar().currentMessage()
    assert w.model.rowCount() == 1
    assert load_settings().connections == ["test:///default", bad]  # the user's choice is kept

    # Removing it through the sidebar forgets it; the other connection stays.
    w.select_connection(bad)
    w.remove_button.click()
    run_until(qt_loop, lambda: w.sidebar_item(bad) is None, what="removed")
    assert load_settings().connections == ["test:///default"]
    w.select_connection(ALL_URI)
    assert w.proxy.rowCount() == 1


def test_settings_file_unwritable_is_a_message(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, config_home: Path
) -> None:
    config_home.mkdir(parents=True, exist_ok=True)
    (config_home / "vmgui").write_text("a file where the directory should be")
    w: MainWindow = make_window(settings=Settings())
    w.add_connection("test:///default")
    assert w.last_error.startswith("Could not save the settings")
    run_until(qt_loop, lambda: w.model.rowCount() == 1, what="connection still opened")


def test_credentials_dialog_answers_the_backends_prompts(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop
) -> None:
    """The UI half of openAuth: the backend awaits window.ask_credentials(uri, prompts)."""
    from vmgui.model.credentials import CredentialPrompt

    w: MainWindow = make_window([])
    prompts = [CredentialPrompt("username", "Username", default="admin"),
               CredentialPrompt("password", "Password", secret=True)]
    task = qt_loop.create_task(w.ask_credentials("qemu+ssh://host/system", prompts))
    first = wait_dialog(qt_loop, lambda: w.last_dialog)
    user, password = first.fields
    assert user.text() == "admin" and password.echoMode() == password.EchoMode.Password
    password.setText("s3cret")
    first.accept()
    assert run(qt_loop, task) == ["admin", "s3cret"]
    task = qt_loop.create_task(w.ask_credentials("qemu+ssh://host/system", prompts))
    wait_dialog(qt_loop, lambda: w.last_dialog, previous=first).reject()
    assert run(qt_loop, task) is None  # cancel = no answers, the backend gives up
