"""Edit a VM: memory, vCPUs, boot order, CD media, autostart, type, direct-boot kernel.

The dialog knows only `VmSettings` and an `apply` coroutine, so every backend that implements
`get_settings`/`apply_settings` gets the same dialog. Apply keeps the dialog open until the
backend has said yes: a refusal is shown as its sentence under the fields, and nothing typed is
lost. A running VM is told that the changes wait for its next start (CD media change at once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import Backend
from vmgui.model import VmInfo
from vmgui.model.vm_settings import (
    BOOT_DEVICE_LABELS,
    BOOT_DEVICES,
    ApplyResult,
    CdromDrive,
    VmSettings,
)
from vmgui.ui.errors import log_failure, readable
from vmgui.ui.new_vm_pages import TYPE_LABELS
from vmgui.ui.new_vm_widgets import (
    HINT_COLOUR,
    ExplainingSpinBox,
    PathField,
    message_label,
    show_message,
)
from vmgui.ui.tasks import accepted, run_for

log = logging.getLogger(__name__)

MIN_MEMORY_MIB = 16
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB: libvirt and the host judge the real limit
MAX_VCPUS = 4096
DEVICE_ROLE = Qt.ItemDataRole.UserRole + 1

ApplySettings = Callable[[VmSettings], Awaitable[ApplyResult]]


class CdromRow(QWidget):
    """One drive: its media path (typed or browsed) and an Eject button."""

    def __init__(self, drive: CdromDrive, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = drive.device
        self.path = PathField("Choose a CD/DVD image", "Disc images (*.iso *.img)")
        self.path.setText(drive.media)
        self.path.setPlaceholderText("Empty (no media)")
        self.eject = QPushButton("Eject")
        self.eject.clicked.connect(lambda: self.path.setText(""))
        self.path.textChanged.connect(lambda t: self.eject.setEnabled(bool(t.strip())))
        self.eject.setEnabled(bool(drive.media))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(self.eject)

    def drive(self) -> CdromDrive:
        return CdromDrive(self.device, self.path.text())


class EditVmDialog(QDialog):
    def __init__(
        self,
        vm_name: str,
        settings: VmSettings,
        apply: ApplySettings,
        running: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Edit “{vm_name}”")
        self._original = settings
        self._apply = apply
        self._task: asyncio.Task[None] | None = None
        self.result_of_apply: ApplyResult | None = None

        self.memory = ExplainingSpinBox()
        self.memory.setRange(MIN_MEMORY_MIB, MAX_MEMORY_MIB)
        self.memory.setSingleStep(128)
        self.memory.setSuffix(" MiB")
        self.memory.setValue(settings.memory_mib)
        self.vcpus = ExplainingSpinBox()
        self.vcpus.setRange(1, MAX_VCPUS)
        self.vcpus.setValue(settings.vcpus)
        self.domain_type = QComboBox()
        for t in dict.fromkeys((*settings.domain_types, settings.domain_type)):
            self.domain_type.addItem(TYPE_LABELS.get(t, t), t)
        self.domain_type.setCurrentIndex(self.domain_type.findData(settings.domain_type))
        self.autostart = QCheckBox("Start when the host starts")
        self.autostart.setChecked(settings.autostart)
        form = QFormLayout()
        form.addRow("Memory:", self.memory)
        form.addRow("Virtual CPUs:", self.vcpus)
        form.addRow("Virtualization:", self.domain_type)
        form.addRow("Autostart:", self.autostart)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        self.boot_list = QListWidget()
        self.kernel = QLineEdit(settings.kernel)
        self.initrd = QLineEdit(settings.initrd)
        self.cmdline = QLineEdit(settings.cmdline)
        if settings.direct_boot:
            layout.addWidget(self._direct_boot_box())
        else:
            layout.addWidget(self._boot_order_box(settings.boot_order))
        self.cdroms = [CdromRow(d) for d in settings.cdroms]
        if self.cdroms:
            media = QGroupBox("CD/DVD media")
            media_form = QFormLayout(media)
            for row in self.cdroms:
                media_form.addRow(f"{row.device}:", row)
            layout.addWidget(media)

        self.note = message_label(HINT_COLOUR, name="editNote")
        show_message(
            self.note,
            f"“{vm_name}” is running: these changes apply at its next start "
            "(CD media change at once)." if running else "",
        )
        self.error = message_label(name="editError")
        for spin in (self.memory, self.vcpus):
            spin.problemChanged.connect(lambda text: show_message(self.error, text))
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Cancel
        )
        apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        assert apply_button is not None
        self.apply_button = apply_button
        apply_button.setDefault(True)
        apply_button.clicked.connect(self._start_apply)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    # ---- sections ----------------------------------------------------------------------------

    def _boot_order_box(self, order: tuple[str, ...]) -> QGroupBox:
        box = QGroupBox("Boot order (ticked devices, top first)")
        for dev in (*order, *(d for d in BOOT_DEVICES if d not in order)):
            item = QListWidgetItem(BOOT_DEVICE_LABELS.get(dev, dev))
            item.setData(DEVICE_ROLE, dev)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if dev in order else Qt.CheckState.Unchecked)
            self.boot_list.addItem(item)
        self.boot_list.setMaximumHeight(90)
        self.up = QPushButton("Up")
        self.down = QPushButton("Down")
        self.up.clicked.connect(lambda: self.move_boot_device(-1))
        self.down.clicked.connect(lambda: self.move_boot_device(1))
        buttons = QVBoxLayout()
        buttons.addWidget(self.up)
        buttons.addWidget(self.down)
        buttons.addStretch(1)
        row = QHBoxLayout(box)
        row.addWidget(self.boot_list, 1)
        row.addLayout(buttons)
        return box

    def _direct_boot_box(self) -> QGroupBox:
        box = QGroupBox("Direct kernel boot")
        form = QFormLayout(box)
        form.addRow("Kernel:", self.kernel)
        form.addRow("Initrd:", self.initrd)
        form.addRow("Command line:", self.cmdline)
        return box

    def move_boot_device(self, step: int) -> None:
        row = self.boot_list.currentRow()
        new = row + step
        if row < 0 or not 0 <= new < self.boot_list.count():
            return
        item = self.boot_list.takeItem(row)
        self.boot_list.insertItem(new, item)
        self.boot_list.setCurrentRow(new)

    # ---- result ------------------------------------------------------------------------------

    def boot_order(self) -> tuple[str, ...]:
        items = [self.boot_list.item(i) for i in range(self.boot_list.count())]
        return tuple(i.data(DEVICE_ROLE) for i in items if i.checkState() == Qt.CheckState.Checked)

    def settings(self) -> VmSettings:
        direct = self._original.direct_boot
        return replace(
            self._original,
            memory_mib=self.memory.value(),
            vcpus=self.vcpus.value(),
            domain_type=str(self.domain_type.currentData()),
            autostart=self.autostart.isChecked(),
            boot_order=() if direct else self.boot_order(),
            kernel=self.kernel.text().strip() if direct else "",
            initrd=self.initrd.text().strip() if direct else "",
            cmdline=self.cmdline.text().strip() if direct else "",
            cdroms=tuple(row.drive() for row in self.cdroms),
        )

    def _start_apply(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._task = run_for(self, self._run_apply(self.settings()), "save the changes")

    async def _run_apply(self, settings: VmSettings) -> None:
        show_message(self.error, "")
        self.apply_button.setEnabled(False)
        try:
            self.result_of_apply = await self._apply(settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # BackendError or a bug: a sentence (logged), fields kept
            log_failure(log, f"Could not save the changes: {readable(exc)}", exc)
            show_message(self.error, readable(exc))
            return
        finally:
            self.apply_button.setEnabled(True)
        self.accept()

    def reject(self) -> None:
        if self._task is not None:
            self._task.cancel()
        super().reject()


async def edit_vm(
    parent: QWidget, backend: Backend, vm: VmInfo, opened: Callable[[EditVmDialog], None]
) -> str:
    """Open the Edit dialog for `vm`; the status sentence afterwards ("" when cancelled).

    Raises BackendError when the settings cannot be read (the caller shows it).
    """
    settings = await backend.get_settings(vm.vm_id)

    async def apply(new: VmSettings) -> ApplyResult:
        return await backend.apply_settings(vm.vm_id, new)

    dialog = EditVmDialog(vm.name, settings, apply, vm.state.is_active, parent)
    opened(dialog)
    try:
        if not await accepted(dialog):
            return ""
        result = dialog.result_of_apply
    finally:
        dialog.deleteLater()
    if result is not None and result.restart_needed:
        return f"Saved the changes to “{vm.name}”; they apply at its next start."
    return f"Saved the changes to “{vm.name}”."
