"""Lifecycle actions (toolbar, context menu, shortcuts) for the selected VM.

Each action runs as an asyncio task through the Backend protocol. The row's state is never set
here: it changes only when the backend's event says so, so a failed action leaves the list as it
was and the user gets one readable sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from vmgui.model import StorageItem, VmInfo, VmState
from vmgui.ui.connections import ConnectionManager, readable
from vmgui.ui.delete_dialog import DeleteVmDialog
from vmgui.ui.dialogs import run_dialog
from vmgui.ui.vm_model import VmKey, VmTableModel

_ACTIVE = {VmState.RUNNING, VmState.BLOCKED}

#: Asked before a start: (connection URI, VM) -> go ahead? (the emulated-host warning).
StartConfirmation = Callable[[str, VmInfo], Awaitable[bool]]


@dataclass(frozen=True)
class ActionSpec:
    name: str  # Backend method
    text: str
    shortcut: str
    icon: QStyle.StandardPixmap
    enabled_in: Callable[[VmState], bool]
    verb: str  # for messages: "Could not <verb> “vm”: ..."


SPECS = (
    ActionSpec("start", "&Start", "Ctrl+Shift+S", QStyle.StandardPixmap.SP_MediaPlay,
               lambda s: not s.is_active, "start"),
    ActionSpec("shutdown", "Shut &Down", "Ctrl+Shift+D", QStyle.StandardPixmap.SP_MediaStop,
               lambda s: s in _ACTIVE, "shut down"),
    ActionSpec("reboot", "&Reboot", "Ctrl+Shift+B", QStyle.StandardPixmap.SP_BrowserReload,
               lambda s: s in _ACTIVE, "reboot"),
    ActionSpec("force_off", "&Force Off", "Ctrl+Shift+F",
               QStyle.StandardPixmap.SP_DialogCancelButton, lambda s: s.is_active, "force off"),
    ActionSpec("pause", "&Pause", "Ctrl+Shift+P", QStyle.StandardPixmap.SP_MediaPause,
               lambda s: s in _ACTIVE, "pause"),
    ActionSpec("resume", "Res&ume", "Ctrl+Shift+R", QStyle.StandardPixmap.SP_MediaSeekForward,
               lambda s: s in (VmState.PAUSED, VmState.PMSUSPENDED), "resume"),
    ActionSpec("delete", "De&lete…", "Delete", QStyle.StandardPixmap.SP_TrashIcon,
               lambda s: not s.is_active, "delete"),
)


class VmActions:
    def __init__(
        self,
        model: VmTableModel,
        manager: ConnectionManager,
        selected: Callable[[], VmKey | None],
        report_error: Callable[[str], None],
        report_status: Callable[[str], None],
        parent: QWidget,
        confirm_start: StartConfirmation | None = None,
    ) -> None:
        self._model = model
        self._confirm_start = confirm_start
        self._manager = manager
        self._selected = selected
        self._report_error = report_error
        self._report_status = report_status
        self._parent = parent
        self._busy: set[VmKey] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_dialog: DeleteVmDialog | None = None
        self.actions: dict[str, QAction] = {}
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

    def update_enabled(self) -> None:
        key = self._selected()
        vm = self._model.vm(key) if key else None
        busy = key in self._busy if key else False
        for spec in SPECS:
            self.actions[spec.name].setEnabled(
                vm is not None and not busy and spec.enabled_in(vm.state)
            )

    def trigger(self, name: str) -> None:
        """Entry point of every action: checks again, then runs it without blocking the GUI."""
        key = self._selected()
        vm = self._model.vm(key) if key else None
        spec = next(s for s in SPECS if s.name == name)
        if key is None or vm is None or key in self._busy or not spec.enabled_in(vm.state):
            return
        coro = self._delete(key, vm) if name == "delete" else self._run(spec, key, vm)
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, spec: ActionSpec, key: VmKey, vm: VmInfo, *args: object) -> None:
        backend = self._manager.backend(key[0])
        if backend is None:
            return
        self._busy.add(key)
        self.update_enabled()
        try:
            if (
                spec.name == "start"
                and self._confirm_start is not None
                and not await self._confirm_start(key[0], vm)
            ):
                self._report_status(f"Start: {vm.name}: cancelled")
                return
            self._report_status(f"{spec.verb.capitalize()}: {vm.name}…")
            await getattr(backend, spec.name)(key[1], *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one readable sentence
            self._report_error(f"Could not {spec.verb} “{vm.name}”: {readable(exc)}")
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
        except Exception as exc:  # noqa: BLE001 - the VM itself can still be deleted
            problem = f"Its storage cannot be listed: {readable(exc)}"
        dialog = DeleteVmDialog(vm.name, storage, problem, self._parent)
        self.last_dialog = dialog
        try:
            if not await run_dialog(dialog):
                return
            spec = next(s for s in SPECS if s.name == "delete")
            await self._run(spec, key, vm, dialog.chosen_paths())
        finally:
            dialog.deleteLater()
