"""Warn before a VM starts with KVM on a host where KVM guest kernel code is emulated.

API for the main window:

    host_status = HostStatusCache()            # one per window; probes this computer once
    host_page.statusChanged.connect(host_status.set)   # optional: reuse the page's result

    # before backend.start(vm_id) of a VM the user asked to start:
    if await confirm_start(window, backend, vm_id, await host_status(), vm_name):
        await backend.start(vm_id)

`confirm_start` asks the backend for the VM's domain type (the built-in VMM always uses KVM)
and asks only when a KVM guest would run on a local host whose
measurement says "emulated"; otherwise it returns True at once without showing anything. For a
libvirt VM the question offers to switch it to software emulation (saved with
`apply_settings`) and start. `confirm_start_if_emulated` asks when the caller knows the type.
The dialog is awaited with `exec_async` (window-modal `open()`): the event loop keeps running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
from dataclasses import replace

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from vmgui.backends.base import Backend, BackendError, is_builtin, is_local_uri
from vmgui.host.probe import emulation_warning, probe_host_async
from vmgui.model.host import HostStatus
from vmgui.ui.tasks import exec_async

START_ANYWAY = "Start Anyway"
SWITCH_AND_START = "Switch to Software Emulation and Start"


class HostStatusCache:
    """An async provider of this computer's HostStatus: probed once, shared by every caller.

    Calling the object returns the status (probing on first use, ~0.5 s in an executor);
    `set()` hands it a status measured elsewhere (the host page) so nothing is probed twice.
    """

    def __init__(self, executor: concurrent.futures.Executor | None = None) -> None:
        self._executor = executor
        self._status: HostStatus | None = None
        self._task: asyncio.Future[HostStatus] | None = None

    @property
    def status(self) -> HostStatus | None:
        return self._status

    def set(self, status: HostStatus) -> None:
        self._status = status

    async def __call__(self) -> HostStatus:
        if self._status is not None:
            return self._status
        if self._task is None or (self._task.done() and self._task.exception() is not None):
            # A memo shared by every caller, not a widget's task: each caller awaits it
            # (shielded) and reports a failure itself, so it is not started with run_for.
            self._task = asyncio.ensure_future(probe_host_async(executor=self._executor))
        status = await asyncio.shield(self._task)
        self._status = self._status or status
        return self._status


def start_warning_text(host_status: HostStatus, can_switch: bool = False) -> tuple[str, str]:
    """(what happens, what to do) for a KVM guest on an emulated host."""
    what = emulation_warning(host_status)
    speed = (
        "On such a host TCG boots a Linux guest to its init in about 4 s, while the emulated "
        "KVM path cannot boot a stock Linux kernel at all."
    )
    if can_switch:
        advice = (
            f"“{SWITCH_AND_START}” changes the VM to QEMU software emulation (TCG, libvirt "
            f"domain type 'qemu') for good, then starts it. {speed}"
        )
    else:
        advice = (
            "Use QEMU software emulation (TCG) instead: a libvirt VM with the virtualization "
            f"type 'qemu' (the New VM wizard picks it on this computer). {speed}"
        )
    return what, advice


def needs_warning(domain_type: str, host_status: HostStatus | None, uri: str = "") -> bool:
    """True when a `domain_type` guest on `uri` would run through emulated KVM."""
    if host_status is None or domain_type != "kvm" or (uri and not is_local_uri(uri)):
        return False
    return bool(emulation_warning(host_status))


class StartChoice(enum.Enum):
    CANCEL = "cancel"
    START = "start"  # as it is, with KVM
    SWITCH = "switch"  # to software emulation first


async def choose_emulated_start(
    parent: QWidget | None,
    domain_type: str,
    host_status: HostStatus | None,
    vm_name: str = "",
    uri: str = "",
    can_switch: bool = False,
) -> StartChoice:
    """Ask before starting a KVM guest on an emulated host (START without asking when there is
    nothing to warn about: TCG guests, remote connections, hardware-assisted or unknown hosts).
    """
    if not needs_warning(domain_type, host_status, uri):
        return StartChoice.START
    assert host_status is not None
    what, advice = start_warning_text(host_status, can_switch)
    box = QMessageBox(parent)
    box.setObjectName("emulationWarning")
    box.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)  # never ends the app
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Emulated Virtualization")
    shown = f"“{vm_name}”" if vm_name else "this VM"
    box.setText(f"Start {shown} with KVM? It will be very slow here.")
    box.setInformativeText(f"{what}\n\n{advice}")
    switch = box.addButton(SWITCH_AND_START, QMessageBox.ButtonRole.AcceptRole) if can_switch else None
    start = box.addButton(START_ANYWAY, QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(switch or cancel)
    box.setEscapeButton(cancel)
    try:
        await exec_async(box)
        clicked = box.clickedButton()
    finally:
        if shiboken6.isValid(box):
            box.deleteLater()
    if switch is not None and clicked is switch:
        return StartChoice.SWITCH
    return StartChoice.START if clicked is start else StartChoice.CANCEL


async def confirm_start_if_emulated(
    parent: QWidget | None,
    domain_type: str,
    host_status: HostStatus | None,
    vm_name: str = "",
    uri: str = "",
) -> bool:
    """Ask before starting a KVM guest on an emulated host; True means go ahead."""
    choice = await choose_emulated_start(parent, domain_type, host_status, vm_name, uri)
    return choice is StartChoice.START


async def confirm_start(
    parent: QWidget | None,
    backend: Backend,
    vm_id: str,
    host_status: HostStatus | None,
    vm_name: str = "",
) -> bool:
    """The start question for a VM of `backend`, its type looked up first; True: go ahead.

    A libvirt VM may be switched to software emulation from the question itself (the change is
    saved through `apply_settings`, then the start goes ahead). When the settings cannot be
    read, the start goes ahead: starting reports its own error.
    """
    if not needs_warning("kvm", host_status, backend.uri):
        return True  # nothing to look up
    try:
        domain_type = await backend.domain_type(vm_id)
    except BackendError:
        return True
    can_switch = not is_builtin(backend.uri)  # the built-in VMM has no software emulation
    choice = await choose_emulated_start(
        parent, domain_type, host_status, vm_name, backend.uri, can_switch
    )
    if choice is StartChoice.SWITCH:
        settings = await backend.get_settings(vm_id)
        await backend.apply_settings(vm_id, replace(settings, domain_type="qemu"))
    return choice is not StartChoice.CANCEL
