"""The real window against private libvirtd daemons: a TCG guest's whole life through the GUI's
own actions, two connections side by side, and a daemon that dies and comes back."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.fixtures.libvirtd import GUEST_READY_MARKER, PrivateLibvirtd
from tests.ui.conftest import run, run_until, wait_dialog
from vmgui.ui.main_window import MainWindow
from vmgui.ui.vm_model import Column, VmKey

pytestmark = pytest.mark.libvirtd
TOOLTIP = Qt.ItemDataRole.ToolTipRole  # the host cell's tooltip is the connection URI


@pytest.fixture
def lv() -> Any:
    import libvirt

    return libvirt


@pytest.fixture
def defined(lv: Any) -> Iterator[list[tuple[Any, str]]]:
    """Domains a test defined (connection, uuid), destroyed and undefined at teardown."""
    doms: list[tuple[Any, str]] = []
    yield doms
    for conn, dom_uuid in doms:
        try:
            dom = conn.lookupByUUIDString(dom_uuid)
        except lv.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    for conn in {id(c): c for c, _ in doms}.values():
        conn.close()


def _state(w: MainWindow, key: VmKey) -> str:
    vm = w.model.vm(key)
    return vm.state.value if vm else "<gone>"


def _act(w: MainWindow, qt_loop: asyncio.AbstractEventLoop, name: str) -> None:
    action = w.vm_actions.actions[name]
    run_until(qt_loop, action.isEnabled, what=f"{name} enabled")
    action.trigger()


@pytest.mark.slow
def test_tcg_guest_lifecycle_through_gui_actions(
    make_window: Any,
    qt_loop: asyncio.AbstractEventLoop,
    libvirtd: PrivateLibvirtd,
    tcg_domain_xml: Any,
    defined: list[tuple[Any, str]],
    lv: Any,
) -> None:
    uri = libvirtd.uri
    w: MainWindow = make_window([uri])
    run_until(qt_loop, lambda: "Connected to" in w.statusBar().currentMessage(), what="connect")
    conn = lv.open(uri)
    serial = libvirtd.home / f"h2-life-{uuid.uuid4().hex[:6]}.log"
    dom = conn.defineXML(tcg_domain_xml("h2-life", serial_log=serial))
    defined.append((conn, dom.UUIDString()))
    key = (uri, dom.UUIDString())
    # The row appears from libvirt's "defined" event: nothing polls.
    run_until(qt_loop, lambda: w.model.vm(key) is not None, what="row of the defined guest")
    assert _state(w, key) == "shut off"
    assert w.select_vm(key)

    def step(action: str, want: str, lv_state: int, timeout: float = 30) -> None:
        _act(w, qt_loop, action)
        try:
            run_until(qt_loop, lambda: _state(w, key) == want, timeout, f"{want} after {action}")
        except AssertionError as exc:  # say what libvirt and the UI thought at that moment
            raise AssertionError(
                f"{exc}; libvirt state {dom.state()}, row {_state(w, key)!r}, "
                f"error {w.last_error!r}, status {w.statusBar().currentMessage()!r}, "
                f"action tasks {len(w.vm_actions.tasks)}"
            ) from None
        assert dom.state()[0] == lv_state, (action, dom.state())  # libvirt agrees
        assert w.last_error == ""

    step("start", "running", lv.VIR_DOMAIN_RUNNING)
    step("pause", "paused", lv.VIR_DOMAIN_PAUSED)
    step("resume", "running", lv.VIR_DOMAIN_RUNNING)
    # Graceful shutdown needs the guest's ACPI button driver: wait for its ready line.
    run_until(qt_loop, lambda: serial.exists() and GUEST_READY_MARKER in serial.read_text(
        errors="replace"), timeout=120, what="guest ready marker")
    step("shutdown", "shut off", lv.VIR_DOMAIN_SHUTOFF, timeout=60)
    step("start", "running", lv.VIR_DOMAIN_RUNNING)
    w.settings.confirm_force_off = False  # its question has a test of its own
    step("force_off", "shut off", lv.VIR_DOMAIN_SHUTOFF)

    # Delete: the dialog is the confirmation; cancelling it keeps the VM.
    _act(w, qt_loop, "delete")
    first = wait_dialog(qt_loop, lambda: w.vm_actions.last_dialog)
    first.reject()
    run_until(qt_loop, lambda: w.vm_actions.actions["delete"].isEnabled(), what="idle")
    assert w.model.vm(key) is not None and conn.lookupByUUIDString(key[1])
    _act(w, qt_loop, "delete")
    dialog = wait_dialog(qt_loop, lambda: w.vm_actions.last_dialog, previous=first)
    # the guest boots a kernel and has no disks: nothing to tick
    assert dialog.storage_boxes == {} and dialog.delete_button.text() == "Delete"
    dialog.delete_button.click()
    run_until(qt_loop, lambda: w.model.vm(key) is None, what="row removed by the event")
    with pytest.raises(lv.libvirtError):
        conn.lookupByUUIDString(key[1])
    assert w.last_error == ""
    assert w.details.key is None


def test_libvirt_error_mid_action_is_a_sentence_and_changes_nothing(
    make_window: Any,
    qt_loop: asyncio.AbstractEventLoop,
    libvirtd: PrivateLibvirtd,
    tcg_domain_xml: Any,
    defined: list[tuple[Any, str]],
    lv: Any,
    tmp_path: Path,
) -> None:
    uri = libvirtd.uri
    w: MainWindow = make_window([uri])
    conn = lv.open(uri)
    xml = re.sub(r"<kernel>[^<]*</kernel>", "<kernel>/nonexistent/vmlinuz</kernel>",
                 tcg_domain_xml("h2-broken"))
    assert "/nonexistent/vmlinuz" in xml
    dom = conn.defineXML(xml)
    defined.append((conn, dom.UUIDString()))
    key = (uri, dom.UUIDString())
    run_until(qt_loop, lambda: w.model.vm(key) is not None, what="row")
    assert w.select_vm(key)
    _act(w, qt_loop, "start")
    run_until(qt_loop, lambda: w.last_error != "", timeout=30, what="error message")
    assert w.last_error.startswith("Could not start “h2-broken”: ")
    assert "Traceback" not in w.last_error and "\n" not in w.last_error
    assert w.last_message_box is not None and w.last_message_box.isVisible()
    w.last_message_box.close()
    assert _state(w, key) == "shut off" and not dom.isActive()
    run_until(qt_loop, lambda: w.vm_actions.actions["start"].isEnabled(), what="start again")
    # Deleting a running VM is not offered: the action is disabled while it runs.
    assert not w.vm_actions.actions["pause"].isEnabled()


def test_two_connections_side_by_side(
    make_window: Any,
    qt_loop: asyncio.AbstractEventLoop,
    libvirtd: PrivateLibvirtd,
    libvirtd_tcp: PrivateLibvirtd,
    tcg_domain_xml: Any,
    defined: list[tuple[Any, str]],
    lv: Any,
) -> None:
    uris = [libvirtd.uri, libvirtd_tcp.tcp_uri]
    keys = []
    for i, uri in enumerate(uris):
        conn = lv.open(uri)
        dom = conn.defineXML(tcg_domain_xml(f"h2-side-{i}"))
        defined.append((conn, dom.UUIDString()))
        keys.append((uri, dom.UUIDString()))
    w: MainWindow = make_window(uris)
    run_until(qt_loop, lambda: all(w.model.vm(k) for k in keys), what="both connections' VMs")
    rows = {w.proxy.index(r, Column.NAME).data(): w.proxy.index(r, Column.HOST).data(TOOLTIP)
            for r in range(w.proxy.rowCount())}
    assert rows["h2-side-0"] == uris[0] and rows["h2-side-1"] == uris[1]
    # The sidebar narrows the list to one connection.
    w.select_connection(uris[1])
    names = {w.proxy.index(r, Column.NAME).data() for r in range(w.proxy.rowCount())}
    assert "h2-side-1" in names and "h2-side-0" not in names


def test_daemon_death_shows_disconnected_ui_responsive_and_recovers(
    make_window: Any,
    qt_loop: asyncio.AbstractEventLoop,
    restartable_libvirtd: PrivateLibvirtd,
    tcg_domain_xml: Any,
    lv: Any,
) -> None:
    daemon = restartable_libvirtd
    conn = lv.open(daemon.uri)
    dom = conn.defineXML(tcg_domain_xml("h2-survivor"))
    key = (daemon.uri, dom.UUIDString())
    conn.close()
    w: MainWindow = make_window([daemon.uri])
    run_until(qt_loop, lambda: w.model.vm(key) is not None, timeout=30, what="row")
    daemon.kill()
    run_until(qt_loop, lambda: "Disconnected from" in w.statusBar().currentMessage(),
              timeout=20, what="disconnected message")
    assert "Disconnected from " + daemon.uri in w.sidebar_item(daemon.uri).toolTip()

    # While disconnected the loop keeps turning: measure the worst gap of a 20 ms ticker,
    # and the filter box still filters.
    async def worst_gap(seconds: float) -> float:
        worst, last = 0.0, time.monotonic()
        end = last + seconds
        while time.monotonic() < end:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            worst, last = max(worst, now - last), now
        return worst

    assert run(qt_loop, worst_gap(2.0)) < 0.5
    w.filter_box.setText("h2-survivor")
    assert w.proxy.rowCount() == 1
    assert w.model.vm(key) is not None  # rows are kept while away

    daemon.start()
    run_until(qt_loop, lambda: w.manager.status(daemon.uri).state.value == "connected",
              timeout=40, what="reconnected")
    assert "Connected to" in w.statusBar().currentMessage()
    assert w.model.vm(key) is not None

