"""The main window as a new user meets it: actions follow what is visible, questions before
destructive steps, words that say what happened, and a window that remembers itself.

libvirt's test:/// driver stands in for a daemon wherever one is not needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tests.fixtures.libvirtd import write_test_driver_xml
from tests.ui.conftest import run_until, spin, wait_dialog
from vmgui import __version__
from vmgui.backends.base import BUILTIN_URI
from vmgui.model import ConnectionState, VmState
from vmgui.settings import load_settings
from vmgui.ui.builtin_tabs import BuiltinTabs
from vmgui.ui.help import about_text
from vmgui.ui.main_window import ALL_URI
from vmgui.ui.vm_model import Column

DEFAULT = "test:///default"


@pytest.fixture
def nodes(tmp_path: Path) -> tuple[str, str]:
    """Two private test:/// hosts with 6 VMs each: vm0000-2 running, 3 paused, 4-5 shut off."""
    a = write_test_driver_xml(tmp_path / "a.xml", 6)
    b = write_test_driver_xml(tmp_path / "b.xml", 6)
    return f"test://{a}", f"test://{b}"


def _listed(qt_loop: asyncio.AbstractEventLoop, w: Any, count: int) -> None:
    run_until(qt_loop, lambda: w.model.rowCount() >= count, what=f"{count} VMs listed")


def _select(qt_loop: asyncio.AbstractEventLoop, w: Any, uri: str, name: str) -> tuple[str, str]:
    key = next(k for k in w.model.keys(uri) if w.model.vm(k).name == name)
    assert w.select_vm(key)
    return key  # type: ignore[no-any-return]


def _message_box(w: Any, name: str) -> QMessageBox | None:
    box = w.findChild(QMessageBox, name)
    return box if box is not None and box.isVisible() else None


def test_actions_follow_what_is_visible(
    qt_loop: asyncio.AbstractEventLoop, qtbot: QtBot, make_window: Any
) -> None:
    w = make_window([DEFAULT])
    _listed(qt_loop, w, 1)
    _select(qt_loop, w, DEFAULT, "test")
    assert w.vm_actions.actions["force_off"].isEnabled()
    w.select_connection(BUILTIN_URI)
    w.builtin_tabs.setCurrentIndex(BuiltinTabs.HOST)  # the host page: no VM is in view
    assert w.pages.currentWidget() is w.host_page
    assert w.selected_key() is None
    assert not any(a.isEnabled() for a in w.vm_actions.actions.values())
    w.builtin_tabs.setCurrentIndex(BuiltinTabs.VMS)
    w.select_connection(ALL_URI)
    _select(qt_loop, w, DEFAULT, "test")
    assert w.vm_actions.actions["force_off"].isEnabled()
    # Delete typed in the XML view edits nothing and deletes nothing.
    w.details.setCurrentWidget(w.details.xml_view)
    w.details.xml_view.setFocus()
    qtbot.keyClick(w.details.xml_view, Qt.Key.Key_Delete)
    spin(qt_loop, 0.2)
    assert w.vm_actions.last_dialog is None


def test_rows_of_a_disconnected_connection_are_stale_and_inactive(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, restartable_libvirtd: Any,
    tcg_domain_xml: Any,
) -> None:
    import libvirt

    daemon = restartable_libvirtd
    conn = libvirt.open(daemon.uri)
    conn.defineXML(tcg_domain_xml("stale-me"))
    conn.close()
    w = make_window([daemon.uri])
    _listed(qt_loop, w, 1)
    key = _select(qt_loop, w, daemon.uri, "stale-me")
    assert w.vm_actions.actions["start"].isEnabled()
    daemon.kill()
    run_until(qt_loop, lambda: w.model.is_stale(key), timeout=30, what="rows marked stale")
    state = w.model.index(w.model.row_of(key), Column.STATE)
    assert "disconnected" in state.data() and "shut off" not in state.data()
    assert not any(a.isEnabled() for a in w.vm_actions.actions.values())
    daemon.start()

    def fresh() -> bool:
        status = w.manager.status(daemon.uri)
        return status is not None and status.state is ConnectionState.CONNECTED

    run_until(qt_loop, fresh, timeout=60, what="the reconnect")
    run_until(qt_loop, lambda: not w.model.is_stale(key), what="rows fresh again")
    assert w.vm_actions.actions["start"].isEnabled()


def test_force_off_asks_and_remembers_dont_ask_again(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    key = _select(qt_loop, w, nodes[0], "vm0000")
    w.vm_actions.trigger("force_off")
    box = wait_dialog(qt_loop, lambda: _message_box(w, "confirmForceOff"))
    assert "vm0000" in box.text() and "unsaved" in box.informativeText()
    box.button(QMessageBox.StandardButton.Cancel).click()
    spin(qt_loop, 0.2)
    assert w.model.vm(key).state is VmState.RUNNING
    w.vm_actions.trigger("force_off")
    box = wait_dialog(qt_loop, lambda: _message_box(w, "confirmForceOff"), previous=box)
    box.checkBox().setChecked(True)
    next(b for b in box.buttons() if b.text().replace("&", "") == "Force Off").click()
    run_until(qt_loop, lambda: w.model.vm(key).state is VmState.SHUTOFF, what="forced off")
    assert load_settings().confirm_force_off is False
    key2 = _select(qt_loop, w, nodes[0], "vm0001")
    w.vm_actions.trigger("force_off")  # no question any more
    run_until(qt_loop, lambda: w.model.vm(key2).state is VmState.SHUTOFF, what="forced off")



def test_force_reset_asks_like_force_off_and_only_for_running_vms(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    """Force Reset (the reset button, next to Reboot which asks the guest) asks first, under
    the same "Don't ask again" as Force Off; a paused or shut-off VM has nothing to reset."""
    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    reset = w.vm_actions.actions["force_reset"]
    for name in ("vm0003", "vm0004"):  # paused, shut off
        _select(qt_loop, w, nodes[0], name)
        assert not reset.isEnabled(), name
    key = _select(qt_loop, w, nodes[0], "vm0000")
    assert reset.isEnabled()
    w.vm_actions.trigger("force_reset")
    box = wait_dialog(qt_loop, lambda: _message_box(w, "confirmForceReset"))
    assert "vm0000" in box.text() and "reset button" in box.informativeText()
    box.button(QMessageBox.StandardButton.Cancel).click()
    run_until(qt_loop, lambda: w.statusBar().currentMessage() == "Force reset: vm0000: cancelled",
              what="cancelled")
    w.vm_actions.trigger("force_reset")
    box = wait_dialog(qt_loop, lambda: _message_box(w, "confirmForceReset"), previous=box)
    next(b for b in box.buttons() if b.text().replace("&", "") == "Force Reset").click()
    run_until(qt_loop, lambda: w.statusBar().currentMessage() == "Force reset: vm0000: done",
              what="reset done")
    assert w.model.vm(key).state is VmState.RUNNING

def test_shutdown_says_asked_and_offers_force_off_after_a_while(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vmgui.ui import actions

    monkeypatch.setattr(actions, "FORCE_OFF_OFFER_S", 0.5)
    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    key = _select(qt_loop, w, nodes[0], "vm0002")
    w.vm_actions.offer_force_off_if_running(key, "vm0002")  # as after a shutdown request
    box = wait_dialog(qt_loop, lambda: _message_box(w, "offerForceOff"))
    assert "vm0002" in box.text() and "still running" in box.text()
    next(b for b in box.buttons() if b.text().replace("&", "") == "Force Off").click()
    run_until(qt_loop, lambda: w.model.vm(key).state is VmState.SHUTOFF, what="forced off")
    # test:/// shuts down at once: the message says what was asked, not that it is done
    key = _select(qt_loop, w, nodes[0], "vm0001")
    w.vm_actions.trigger("shutdown")
    run_until(qt_loop, lambda: w.statusBar().currentMessage() == "Asked “vm0001” to shut down",
              what="the status to say what was asked")
    spin(qt_loop, 1.0)
    assert _message_box(w, "offerForceOff") is None  # it did shut down: nothing to offer


def test_filter_escape_selection_after_delete_and_create(
    qt_loop: asyncio.AbstractEventLoop, qtbot: QtBot, make_window: Any, nodes: tuple[str, str]
) -> None:
    from vmgui.model import VmConfig

    a, b = nodes
    w = make_window([a, b])
    _listed(qt_loop, w, 12)
    qtbot.keyClicks(w.filter_box, "shut")
    qtbot.keyClick(w.filter_box, Qt.Key.Key_Escape)
    assert w.filter_box.text() == ""
    # Delete the last VM of `a` in the "All" view: the selection stays on `a`'s VMs.
    w.table.sortByColumn(Column.CONNECTION, Qt.SortOrder.AscendingOrder)
    backend = w.manager.backend(a)
    keys_a = w.model.keys(a)
    victim = _select(qt_loop, w, a, "vm0005")  # shut off, the last of `a` in sort order
    qt_loop.run_until_complete(backend.delete(victim[1]))
    run_until(qt_loop, lambda: w.model.vm(victim) is None, what="row removed")
    selected = w.selected_key()
    assert selected is None or selected[0] == a, selected
    assert selected is None or selected in keys_a
    # Create: the new VM becomes the selection once it is listed.
    info = qt_loop.run_until_complete(backend.define(VmConfig(name="fresh", domain_type="qemu")))
    w.selection.select_when_listed((info.connection, info.vm_id))
    run_until(qt_loop, lambda: w.selected_key() == (a, info.vm_id), what="new VM selected")


def test_window_remembers_size_splitters_and_sort_order(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    w.resize(760, 560)  # inside the (offscreen) screen, which restoreGeometry respects
    w.table.sortByColumn(Column.MEMORY, Qt.SortOrder.DescendingOrder)
    w.close()
    saved = load_settings()
    assert saved.sort_column == "memory" and saved.sort_descending
    assert saved.window_geometry and saved.splitter_sizes
    w2 = make_window(settings=saved)
    header = w2.table.horizontalHeader()
    assert header.sortIndicatorSection() == Column.MEMORY
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert (w2.width(), w2.height()) == (760, 560)


def test_small_window_keeps_several_rows_of_the_list(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    w.resize(640, 420)
    spin(qt_loop, 0.1)
    rows_visible = w.table.viewport().height() // w.table.verticalHeader().defaultSectionSize()
    assert rows_visible >= 3


def test_help_menu_connection_column_and_empty_hint(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    w = make_window([])
    w.select_connection(ALL_URI)
    assert w.empty_hint.isVisible() and "Add Connection" in w.empty_hint.text()
    menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions()}
    help_items = [a.text().replace("&", "") for a in menus["Help"].actions()]
    assert "Keyboard Shortcuts" in help_items and any("About" in t for t in help_items)
    assert __version__ in about_text()
    keys = dict(w.shortcut_rows())
    assert keys["New VM"] == "Ctrl+N" and keys["Delete"] == "Del" and keys["Edit"] == "Ctrl+E"
    w.add_connection(nodes[0])
    w.add_connection(nodes[1])
    _listed(qt_loop, w, 12)
    w.select_connection(ALL_URI)
    assert not w.empty_hint.isVisible()
    assert not w.table.isColumnHidden(Column.CONNECTION)  # side by side: say whose
    w.select_connection(nodes[0])
    assert w.table.isColumnHidden(Column.CONNECTION)


def test_never_connected_is_not_disconnected(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any
) -> None:
    bad = "qemu+tcp://127.0.0.1:1/system"
    w = make_window([bad])

    def failed() -> bool:
        status = w.manager.status(bad)
        return status is not None and status.state is ConnectionState.DISCONNECTED

    run_until(qt_loop, failed, timeout=30, what="the connection attempt to fail")
    tip = w.sidebar_item(bad).toolTip()
    assert tip.startswith(f"Could not connect to {bad}") and "Disconnected" not in tip


def test_edit_action_opens_the_dialog_and_saves(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    key = _select(qt_loop, w, nodes[0], "vm0002")
    assert w.edit_action.isEnabled()
    w.edit_action.trigger()
    dialog = wait_dialog(qt_loop, lambda: w.last_dialog)
    wanted = dialog.memory.value() + 128
    dialog.memory.setValue(wanted)
    dialog.apply_button.click()

    def done() -> bool:
        failed = shiboken6.isValid(dialog) and dialog.error.isVisible()
        return failed or "Saved the changes" in w.statusBar().currentMessage()

    run_until(qt_loop, done, what="the edit to be saved")
    assert "next start" in w.statusBar().currentMessage()  # it is running
    settings = qt_loop.run_until_complete(w.manager.backend(nodes[0]).get_settings(key[1]))
    assert settings.memory_mib == wanted


def test_created_from_cd_media_says_it_boots_once_and_how_to_eject(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, nodes: tuple[str, str]
) -> None:
    from vmgui.model import VmConfig
    from vmgui.ui.main_window import created_message

    w = make_window([nodes[0]])
    _listed(qt_loop, w, 6)
    backend = w.manager.backend(nodes[0])
    iso_vm = qt_loop.run_until_complete(
        backend.define(VmConfig(name="inst", iso="/isos/debian.iso", domain_type="qemu")))
    plain = qt_loop.run_until_complete(backend.define(VmConfig(name="plain", domain_type="qemu")))
    text = qt_loop.run_until_complete(created_message(backend, iso_vm))
    assert text.startswith("Created “inst”: it boots its installation media once")
    assert "Edit (Ctrl+E)" in text
    assert qt_loop.run_until_complete(created_message(backend, plain)) == "Created “plain”"
