"""Lifecycle actions (toolbar, context menu, shortcuts) for the selected VM.

Each action runs as a task (`run_for`) through the Backend protocol. The row's state is never set
here: it changes only when the backend's event says so, so a failed action leaves the list as it
was and the user gets one readable sentence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from vmgui.backends.base import Backend
from vmgui.model import StorageItem, VmInfo, VmState
from vmgui.ui import force_off
from vmgui.ui.connections import ConnectionManager
from vmgui.ui.delete_dialog import DeleteVmDialog
from vmgui.ui.errors import log_failure, readable
from vmgui.ui.tasks import Report, accepted, run_for, tasks_of
from vmgui.ui.vm_model import VmKey, VmTableModel

log = logging.getLogger(__name__)

_ACTIVE = {VmState.RUNNING, VmState.BLOCKED}

#: Asked before a start: (connection URI, VM) -> go ahead? (the emulated-host warning).
StartConfirmation = Callable[[str, VmInfo], Awaitable[bool]]
#: Asked before a forced action (Force Off, Force Reset): (action, VM) -> go ahead? (unless the
#: user said "Don't ask again").
ForcedConfirmation = Callable[["VmAction", VmInfo], Awaitable[bool]]
#: Seconds after a shutdown request before Force Off is offered (a module value tests shorten).
FORCE_OFF_OFFER_S = force_off.FORCE_OFF_OFFER_S
#: The backend call an action makes for one VM.
BackendCall = Callable[[Backend, str], Awaitable[None]]


class VmAction(enum.StrEnum):
    """The actions' names (keys of `VmActions.actions`)."""

    START = "start"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    FORCE_RESET = "force_reset"
    FORCE_OFF = "force_off"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"


@dataclass(frozen=True)
class ActionSpec:
    name: VmAction
    text: str
    shortcut: str
    icon: QStyle.StandardPixmap
    enabled_in: Callable[[VmState], bool]
    verb: str  # for messages: "Could not <verb> “vm”: ..."
    call: BackendCall


SPECS = (
    ActionSpec(VmAction.START, "&Start", "Ctrl+Shift+S", QStyle.StandardPixmap.SP_MediaPlay,
               lambda s: not s.is_active, "start", lambda b, vm_id: b.start(vm_id)),
    ActionSpec(VmAction.SHUTDOWN, "Shut &Down", "Ctrl+Shift+D",
               QStyle.StandardPixmap.SP_MediaStop, lambda s: s in _ACTIVE, "shut down",
               lambda b, vm_id: b.shutdown(vm_id)),
    ActionSpec(VmAction.REBOOT, "&Reboot", "Ctrl+Shift+B", QStyle.StandardPixmap.SP_BrowserReload,
               lambda s: s in _ACTIVE, "reboot", lambda b, vm_id: b.reboot(vm_id)),
    ActionSpec(VmAction.FORCE_RESET, "Force Rese&t", "Ctrl+Shift+T",
               QStyle.StandardPixmap.SP_MediaSkipBackward, lambda s: s in _ACTIVE, "force reset",
               lambda b, vm_id: b.reset(vm_id)),
    ActionSpec(VmAction.FORCE_OFF, "&Force Off", "Ctrl+Shift+F",
               QStyle.StandardPixmap.SP_DialogCancelButton, lambda s: s.is_active, "force off",
               lambda b, vm_id: b.force_off(vm_id)),
    ActionSpec(VmAction.PAUSE, "&Pause", "Ctrl+Shift+P", QStyle.StandardPixmap.SP_MediaPause,
               lambda s: s in _ACTIVE, "pause", lambda b, vm_id: b.pause(vm_id)),
    ActionSpec(VmAction.RESUME, "Res&ume", "Ctrl+Shift+R",
               QStyle.StandardPixmap.SP_MediaSeekForward,
               lambda s: s in (VmState.PAUSED, VmState.PMSUSPENDED), "resume",
               lambda b, vm_id: b.resume(vm_id)),
    # The storage choice is made in the confirmation dialog; see VmActions._delete.
    ActionSpec(VmAction.DELETE, "De&lete…", "Delete", QStyle.StandardPixmap.SP_TrashIcon,
               lambda s: not s.is_active, "delete", lambda b, vm_id: b.delete(vm_id)),
)
SPEC = {spec.name: spec for spec in SPECS}


class VmActions:
    def __init__(
        self,
        model: VmTableModel,
        manager: ConnectionManager,
        selected: Callable[[], VmKey | None],
        report_error: Report,
        report_status: Callable[[str], None],
        parent: QWidget,
        confirm_start: StartConfirmation | None = None,
        confirm_forced: ForcedConfirmation | None = None,
    ) -> None:
        self._model = model
        self._confirm_start = confirm_start
        self._confirm_forced = confirm_forced
        self._manager = manager
        self._selected = selected
        self._report_error = report_error
        self._report_status = report_status
        self._parent = parent
        self.owner = QObject(parent)  # owns the running actions: cancel_tasks(owner) stops them
        self._busy: set[VmKey] = set()
        self.last_dialog: DeleteVmDialog | None = None
        self.actions: dict[VmAction, QAction] = {}
        style = parent.style()
        for spec in SPECS:
            action = QAction(style.standardIcon(spec.icon), spec.text.replace("…", ""), parent)
            action.setText(spec.text)
            action.setShortcut(QKeySequence(spec.shortcut))
            action.setToolTip(f"{spec.text.replace('&', '').rstrip('…')} ({spec.shortcut})")
            action.triggered.connect(lambda _=False, s=spec: self.trigger(s.name))
            parent.addAction(action)  # shortcuts work wherever focus is in the window
            self.actions[spec.name] = action
        self.update_enabled()

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        """Actions still running (for tests and diagnostics)."""
        return tasks_of(self.owner)

    def update_enabled(self) -> None:
        key = self._selected()
        vm = self._model.vm(key) if key else None
        # a stale row (its connection is lost) shows the last known state: nothing to act on
        busy = (key in self._busy or self._model.is_stale(key)) if key else False
        for spec in SPECS:
            self.actions[spec.name].setEnabled(
                vm is not None and not busy and spec.enabled_in(vm.state)
            )

    def trigger(self, name: VmAction) -> None:
        """Entry point of every action: checks again, then runs it without blocking the GUI."""
        key = self._selected()
        vm = self._model.vm(key) if key else None
        spec = SPEC[name]
        if key is None or vm is None or key in self._busy or not spec.enabled_in(vm.state):
            return
        if self._model.is_stale(key):
            return
        coro = self._delete(key, vm) if name is VmAction.DELETE else self._run(spec, key, vm)
        run_for(self.owner, coro, f"{spec.verb} “{vm.name}”", report=self._report_error)

    def offer_force_off_if_running(self, key: VmKey, vm_name: str) -> None:
        """In FORCE_OFF_OFFER_S, if the VM still runs, offer Force Off (no second question)."""

        def still_running() -> bool:
            vm = self._model.vm(key)
            return vm is not None and vm.state.is_active and not self._model.is_stale(key)

        async def offer() -> None:
            if await force_off.offer_force_off(
                self._parent, vm_name, still_running, FORCE_OFF_OFFER_S
            ):
                vm = self._model.vm(key)
                if vm is not None:
                    await self._run(SPEC[VmAction.FORCE_OFF], key, vm, confirm=False)

        run_for(self.owner, offer(), f"force off “{vm_name}”", report=self._report_error)

    async def _run(
        self, spec: ActionSpec, key: VmKey, vm: VmInfo, *, confirm: bool = True
    ) -> None:
        backend = self._manager.backend(key[0])
        if backend is None:
            return
        self._busy.add(key)
        self.update_enabled()
        try:  # a failure propagates to run_for: "Could not <verb> “vm”: <reason>", logged
            if (
                spec.name is VmAction.START
                and self._confirm_start is not None
                and not await self._confirm_start(key[0], vm)
            ):
                self._report_status(f"Start: {vm.name}: cancelled")
                return
            if (
                spec.name in (VmAction.FORCE_OFF, VmAction.FORCE_RESET)
                and confirm
                and self._confirm_forced is not None
                and not await self._confirm_forced(spec.name, vm)
            ):
                self._report_status(f"{spec.verb.capitalize()}: {vm.name}: cancelled")
                return
            self._report_status(f"{spec.verb.capitalize()}: {vm.name}…")
            await spec.call(backend, key[1])
            if spec.name is VmAction.SHUTDOWN:
                # Only a request (the ACPI power button): say so, and offer Force Off later.
                self._report_status(f"Asked “{vm.name}” to shut down")
                self.offer_force_off_if_running(key, vm.name)
            else:
                self._report_status(f"{spec.verb.capitalize()}: {vm.name}: done")
        finally:
            self._busy.discard(key)
            self.update_enabled()

    async def _delete(self, key: VmKey, vm: VmInfo) -> None:
        backend = self._manager.backend(key[0])
        if backend is None:
            return
        storage: list[StorageItem] = []
        problem = ""
        try:
            storage = await backend.list_storage(key[1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the VM itself can still be deleted
            problem = f"Its storage cannot be listed: {readable(exc)}"
            log_failure(log, f"{vm.name}: {problem}", exc)
        dialog = DeleteVmDialog(vm.name, storage, problem, self._parent)
        self.last_dialog = dialog
        try:
            if not await accepted(dialog):
                return
            paths = dialog.chosen_paths()

            async def delete(backend: Backend, vm_id: str) -> None:
                await backend.delete(vm_id, paths)

            await self._run(dataclasses.replace(SPEC[VmAction.DELETE], call=delete), key, vm)
        finally:
            dialog.deleteLater()
