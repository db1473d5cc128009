"""The new-VM wizard's pages: source, resources, storage, name and type, summary.

log = logging.getLogger(__name__)

Pages read shared facts (host status, connection capabilities, names in use) from one
`WizardState`, which the wizard fills asynchronously; `state.changed` makes visible pages
refresh. A page never talks to a backend itself. Bad input is reported on the page in one
sentence and the page is not left, so nothing typed is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QRadioButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from vmgui.backends.base import Backend, DemoSources, SourceChecks, is_builtin
from vmgui.host.memory import free_memory_problem
from vmgui.model.host import DomainCapabilities, HostStatus, Verdict
from vmgui.ui import new_vm_rules as rules
from vmgui.ui.errors import log_failure, readable
from vmgui.ui.new_vm_widgets import (
    HINT_COLOUR,
    ExplainingSpinBox,
    PathField,
    WarningBanner,
    message_label,
    show_message,
)
from vmgui.ui.tasks import run_for

log = logging.getLogger(__name__)

ISO_FILTER = "Installer images (*.iso *.ISO)"
DISK_FILTER = "Disk images (*.img *.raw *.qcow2 *.vmdk *.vdi)"
KERNEL_FILTER = "Kernel images (vmlinuz* bzImage* *.elf)"
DEFAULT_CMDLINE = "console=ttyS0"
REMOTE_FILES = "This connection is on another computer: type paths as they are there."

SOURCE_ISO, SOURCE_KERNEL, SOURCE_IMPORT, SOURCE_DEMO = "iso", "kernel", "import", "demo"
SOURCE_DEMO_LINUX = "demo-linux"
DEMO_NAMES = {SOURCE_DEMO: "grub-demo", SOURCE_DEMO_LINUX: "demo-linux"}
DEMO_LINUX_HINT = (
    "Downloads Debian's kernel and busybox (about 27 MB) into your cache and boots them: "
    "a real Linux shell on the serial console."
)
DISK_NEW, DISK_NONE, DISK_EXISTING = "new", "none", "existing"
NETWORKS = (("user", "User-mode NAT (guest reaches the network)"), ("none", "No network"))
TYPE_LABELS = {
    "kvm": "KVM (hardware-assisted)",
    "qemu": "QEMU software emulation (TCG)",
}


@dataclass
class Connection:
    uri: str
    name: str
    backend: Backend


@dataclass
class Facts:
    """What the wizard learned asynchronously; absent keys are still being looked up."""

    host: HostStatus | None = None
    host_done: bool = False
    caps: dict[str, DomainCapabilities] = field(default_factory=dict)
    taken: dict[str, set[str]] = field(default_factory=dict)
    #: per URI: the host's limits, or the sentence saying why they are unknown
    limits: dict[str, rules.HostLimits | str] = field(default_factory=dict)


class WizardState(QObject):
    """The connections, the chosen one, and the facts gathered so far."""

    changed = Signal()

    def __init__(self, connections: list[Connection], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.connections = connections
        self.index = 0
        self.facts = Facts()
        self._this_computer = rules.host_limits()

    @property
    def limits(self) -> rules.HostLimits:
        """The chosen connection's host's limits; this computer's until (or unless) known."""
        known = self.facts.limits.get(self.connection.uri)
        return known if isinstance(known, rules.HostLimits) else self._this_computer

    @property
    def connection(self) -> Connection:
        return self.connections[self.index]

    @property
    def local(self) -> bool:
        return self.connection.backend.is_local

    def taken_names(self) -> set[str]:
        return self.facts.taken.get(self.connection.uri, set())

    def source_checker(self, kind: str) -> Callable[[str], Awaitable[str]] | None:
        """The connection's own check of a boot file (built-in: the VMM's kernel detector,
        ISO magic, disks of other VMs), or None when the backend has none."""
        backend = self.connection.backend
        if not isinstance(backend, SourceChecks):
            return None
        checks: dict[str, Callable[[str], Awaitable[str]]] = {
            SOURCE_KERNEL: backend.kernel_problem,
            SOURCE_ISO: backend.iso_problem,
            SOURCE_IMPORT: backend.disk_problem,
        }
        return checks.get(kind)

    def demo_linux_problem(self) -> str | None:
        """None: no Linux demo on this connection; "": offered; else why it would not boot."""
        if not isinstance(self.connection.backend, DemoSources):
            return None
        host = self.facts.host
        if host is not None and host.verdict is not Verdict.HARDWARE_ASSISTED:
            return (
                "Not on this computer: a stock Linux kernel needs hardware-assisted "
                f"virtualization ({host.headline.rstrip('.')}). The GRUB demo works here."
            )
        return ""

    def demo_problem(self) -> str | None:
        """None: this connection has no Demo; "": offered; else why it cannot be used."""
        backend = self.connection.backend
        return backend.demo_problem() if isinstance(backend, DemoSources) else None


def _hint(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {HINT_COLOUR}")
    return label


def _spin(low: int, high: int, value: int, suffix: str = "", step: int = 1) -> ExplainingSpinBox:
    """A number field as wide as its numbers, not the page, that says why input was refused."""
    spin = ExplainingSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSingleStep(step)
    spin.setSuffix(suffix)
    spin.setMinimumWidth(150)
    spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
    return spin


def _indented(widget: QWidget) -> QWidget:
    """A radio button's own fields, indented under it."""
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(24, 0, 0, 6)
    layout.addWidget(widget)
    return holder


# --- 1: connection and install source --------------------------------------------------------


class SourcePage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Connection and Installation Source")
        self.setSubTitle("Where the VM runs, and what it starts from.")

        self.connection_box = QComboBox()
        for conn in state.connections:
            self.connection_box.addItem(conn.name, conn.uri)
        self.connection_box.currentIndexChanged.connect(self._connection_chosen)
        self.remote_hint = _hint(REMOTE_FILES)
        self.remote_hint.hide()

        self.iso_radio = QRadioButton("Install from an ISO image")
        self.kernel_radio = QRadioButton("Boot a Linux kernel directly")
        self.import_radio = QRadioButton("Import an existing disk image")
        self.demo_radio = QRadioButton("Demo: a GRUB boot menu built on this computer")
        self.demo_hint = _hint(
            "Shows a real boot screen (SeaBIOS and GRUB) on any computer, even where guest "
            "operating systems would be emulated and very slow."
        )
        self.demo_linux_radio = QRadioButton("Demo Linux: Debian's kernel with a busybox shell")
        self.demo_linux_hint = _hint(DEMO_LINUX_HINT)
        self.group = QButtonGroup(self)
        for radio in (self.iso_radio, self.kernel_radio, self.import_radio, self.demo_radio,
                      self.demo_linux_radio):
            self.group.addButton(radio)
        self.iso_radio.setChecked(True)

        self.iso = PathField("Choose an ISO image", ISO_FILTER)
        self.iso.setPlaceholderText("/path/to/installer.iso")
        self.kernel = PathField("Choose a kernel image", KERNEL_FILTER)
        self.kernel.setPlaceholderText("/boot/vmlinuz")
        self.initrd = PathField("Choose an initrd")
        self.initrd.setPlaceholderText("optional")
        self.cmdline = QLineEdit(DEFAULT_CMDLINE)
        self.image = PathField("Choose a disk image", DISK_FILTER)
        self.image.setPlaceholderText("/path/to/disk.img or .qcow2")
        kernel_form = QWidget()
        form = QFormLayout(kernel_form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Kernel:", self.kernel)
        form.addRow("Initrd:", self.initrd)
        form.addRow("Command line:", self.cmdline)
        self.error = message_label(name="sourceError")

        top = QFormLayout()
        top.addRow("Connection:", self.connection_box)
        source = QGroupBox("Start from")
        column = QVBoxLayout(source)
        column.addWidget(self.iso_radio)
        column.addWidget(_indented(self.iso))
        column.addWidget(self.kernel_radio)
        column.addWidget(_indented(kernel_form))
        column.addWidget(self.import_radio)
        column.addWidget(_indented(self.image))
        self.demo_box = QWidget()
        demo_column = QVBoxLayout(self.demo_box)
        demo_column.setContentsMargins(0, 0, 0, 0)
        demo_column.addWidget(self.demo_radio)
        demo_column.addWidget(_indented(self.demo_hint))
        demo_column.addWidget(self.demo_linux_radio)
        demo_column.addWidget(_indented(self.demo_linux_hint))
        column.addWidget(self.demo_box)
        self._checked: dict[tuple[str, str, str], str] = {}  # (uri, kind, path) -> problem
        self._check_task: asyncio.Future[None] | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.remote_hint)
        layout.addWidget(source)
        layout.addWidget(self.error)
        layout.addStretch(1)

        self.group.buttonToggled.connect(self._sync)
        for path_field in (self.iso, self.kernel, self.initrd, self.image):
            path_field.textChanged.connect(self._edited)
        self._sync()
        self._connection_chosen(0)

    def facts_arrived(self) -> None:
        """The host verdict arrived (or the connection changed): offer Demo Linux or say why not."""
        problem = self.state.demo_linux_problem()
        self.demo_linux_radio.setVisible(problem is not None)
        self.demo_linux_hint.setVisible(problem is not None)
        self.demo_linux_radio.setEnabled(not problem)
        self.demo_linux_hint.setText(problem or DEMO_LINUX_HINT)
        if problem and self.demo_linux_radio.isChecked():
            self.demo_radio.setChecked(True)

    def kind(self) -> str:
        if self.kernel_radio.isChecked():
            return SOURCE_KERNEL
        if self.demo_box.isVisibleTo(self):
            if self.demo_radio.isChecked():
                return SOURCE_DEMO
            if self.demo_linux_radio.isChecked():
                return SOURCE_DEMO_LINUX
        return SOURCE_IMPORT if self.import_radio.isChecked() else SOURCE_ISO

    def main_file(self) -> str:
        """The file the VM is named after: the ISO, the kernel or the imported image."""
        kind = self.kind()
        if kind in DEMO_NAMES:
            return DEMO_NAMES[kind]
        return {SOURCE_ISO: self.iso, SOURCE_KERNEL: self.kernel, SOURCE_IMPORT: self.image}[
            kind
        ].text()

    def _sync(self, *_args: object) -> None:
        kind = self.kind()
        self.iso.setEnabled(kind == SOURCE_ISO)
        for w in (self.kernel, self.initrd, self.cmdline):
            w.setEnabled(kind == SOURCE_KERNEL)
        self.image.setEnabled(kind == SOURCE_IMPORT)
        self._edited()

    def _edited(self, *_args: object) -> None:
        show_message(self.error, "")
        self.completeChanged.emit()

    def _connection_chosen(self, index: int) -> None:
        if index < 0:
            return
        self.state.index = index
        local = self.state.local
        self.remote_hint.setVisible(not local)
        for path_field in (self.iso, self.kernel, self.initrd, self.image):
            path_field.set_browsable(local, REMOTE_FILES)
        demo = self.state.demo_problem()
        self.demo_box.setVisible(demo is not None)
        self.demo_radio.setEnabled(not demo)
        self.demo_hint.setText(demo or self.demo_hint.text())
        if demo is None and (self.demo_radio.isChecked() or self.demo_linux_radio.isChecked()):
            self.iso_radio.setChecked(True)
        self.facts_arrived()
        self.state.changed.emit()

    def isComplete(self) -> bool:
        return bool(self.main_file())

    def problem(self) -> str:
        """Why the chosen files cannot be used ("" when they can, or cannot be checked here)."""
        if not self.state.local:
            return ""
        kind = self.kind()
        if kind == SOURCE_DEMO:
            return self.state.demo_problem() or ""
        if kind == SOURCE_DEMO_LINUX:
            return self.state.demo_linux_problem() or ""
        if kind == SOURCE_ISO:
            return rules.file_problem(self.iso.text(), "ISO image")
        if kind == SOURCE_IMPORT:
            return rules.file_problem(self.image.text(), "disk image")
        problem = rules.file_problem(self.kernel.text(), "kernel image")
        if not problem and self.initrd.text():
            problem = rules.file_problem(self.initrd.text(), "initrd")
        return problem

    def validatePage(self) -> bool:
        problem = self.problem()
        if not problem:
            problem = self._connection_check()
        show_message(self.error, problem)
        return not problem

    def _connection_check(self) -> str:
        """The connection's own check of the main file: answered from the cache, or started
        (Next is pressed again for the user when it passes; nothing blocks meanwhile)."""
        kind = self.kind()
        check = self.state.source_checker(kind) if self.state.local else None
        if check is None:
            return ""
        key = (self.state.connection.uri, kind, self.main_file())
        if key in self._checked:
            return self._checked[key]
        if self._check_task is None or self._check_task.done():
            self._check_task = run_for(self, self._run_check(key, check), "check the file")
        return "Checking the file…"

    async def _run_check(self, key: tuple[str, str, str],
                         check: Callable[[str], Awaitable[str]]) -> None:
        try:
            problem = await check(key[2])
        except Exception as exc:  # a failed check is its sentence (a bug is logged too)
            problem = readable(exc)
            log_failure(log, f"Checking {key[2]} failed: {problem}", exc)
        self._checked[key] = problem
        wizard = self.wizard()
        now = (self.state.connection.uri, self.kind(), self.main_file())
        if wizard is None or wizard.currentPage() is not self or now != key:
            return
        if problem:
            show_message(self.error, problem)
        else:
            wizard.next()


# --- 2: memory and CPUs ----------------------------------------------------------------------


class ResourcesPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        limits = state.limits
        self.setTitle("Memory and CPUs")
        self.setSubTitle("How much of this computer the VM may use.")
        self.memory = _spin(
            rules.MIN_MEMORY_MIB, limits.memory_mib, limits.default_memory_mib, " MiB", 128
        )
        self.vcpus = _spin(1, limits.cpus, 1)
        self.host_hint = _hint()
        self.caution = message_label("#b06000", name="memoryCaution")
        self.input_problem = message_label(name="resourcesInputProblem")
        for spin in (self.memory, self.vcpus):
            spin.problemChanged.connect(lambda text: show_message(self.input_problem, text))
        form = QFormLayout()
        form.addRow("Memory:", self.memory)
        form.addRow("Virtual CPUs:", self.vcpus)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.input_problem)
        layout.addWidget(self.host_hint)
        layout.addWidget(self.caution)
        layout.addStretch(1)
        self.memory.valueChanged.connect(self._memory_changed)

    def initializePage(self) -> None:
        self.apply_limits()

    def apply_limits(self) -> None:
        """Bound the fields by the connection's host, and say whose limits they are."""
        limits = self.state.limits
        self.memory.setMaximum(limits.memory_mib)
        self.vcpus.setMaximum(limits.cpus)
        figures = (
            f"{limits.memory_mib:,} MiB of memory and "
            f"{limits.cpus} CPU{'s' if limits.cpus != 1 else ''}"
        )
        known = self.state.facts.limits.get(self.state.connection.uri)
        if isinstance(known, rules.HostLimits):
            who = "This computer" if self.state.local else "The host"
            self.host_hint.setText(f"{who} has {figures}.")
        elif known:
            self.host_hint.setText(
                f"Limits are this computer's ({figures}); the host's are unknown: {known}"
            )
        else:
            self.host_hint.setText(f"Asking the host for its limits (this computer: {figures}).")
        self._memory_changed(self.memory.value())

    def _memory_changed(self, mib: int) -> None:
        show_message(self.caution, self.state.limits.memory_caution(mib))

    def validatePage(self) -> bool:
        """The built-in VMM runs here and now: its memory must be free on this computer."""
        if not is_builtin(self.state.connection.uri):
            return True
        problem = free_memory_problem(self.memory.value())
        show_message(self.caution, problem)
        return not problem


# --- 3: storage ------------------------------------------------------------------------------


class StoragePage(QWizardPage):
    def __init__(self, state: WizardState, source: SourcePage) -> None:
        super().__init__()
        self.state = state
        self.source = source
        self.setTitle("Storage")
        self.setSubTitle("The VM's hard disk.")
        self.new_radio = QRadioButton("Create a new disk image")
        self.none_radio = QRadioButton("No disk")
        self.existing_radio = QRadioButton("Use the imported disk image")
        self.group = QButtonGroup(self)
        for radio in (self.new_radio, self.none_radio, self.existing_radio):
            self.group.addButton(radio)
        self.new_radio.setChecked(True)
        self.disk_size = _spin(1, rules.MAX_DISK_GIB, rules.DEFAULT_DISK_GIB, " GiB")
        self.path = PathField("Create the disk image as", DISK_FILTER, save=True)
        self.existing = _hint()
        self.error = message_label(name="storageError")
        self.disk_size.problemChanged.connect(lambda text: show_message(self.error, text))
        new_form = QWidget()
        form = QFormLayout(new_form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Size:", self.disk_size)
        form.addRow("File:", self.path)
        form.addRow("", _hint("Raw image; space is allocated as the guest writes."))
        column = QVBoxLayout(self)
        column.addWidget(self.new_radio)
        column.addWidget(_indented(new_form))
        column.addWidget(self.none_radio)
        column.addWidget(self.existing_radio)
        column.addWidget(_indented(self.existing))
        column.addWidget(self.error)
        column.addStretch(1)
        self.group.buttonToggled.connect(self._sync)
        self.path.textChanged.connect(lambda _t: show_message(self.error, ""))

    def kind(self) -> str:
        if self.existing_radio.isChecked():
            return DISK_EXISTING
        return DISK_NONE if self.none_radio.isChecked() else DISK_NEW

    def auto_path(self, vm_name: str) -> str:
        folder = self.state.connection.backend.new_vm_defaults().disk_folder
        return os.path.join(folder, f"{vm_name or 'vm'}{rules.DISK_SUFFIX}")

    def disk_path(self, vm_name: str) -> str:
        """The new image's file: what the user chose, else <default folder>/<name>.img."""
        return self.path.text() or self.auto_path(vm_name)

    def initializePage(self) -> None:
        importing = self.source.kind() == SOURCE_IMPORT
        self.existing_radio.setEnabled(importing)
        self.new_radio.setEnabled(not importing)
        self.none_radio.setEnabled(not importing)
        if importing:
            self.existing_radio.setChecked(True)
            self.existing.setText(self.source.image.text())
        else:
            self.existing.setText("Choose “Import an existing disk image” on the first page.")
            if self.existing_radio.isChecked():
                self.new_radio.setChecked(True)
            if self.source.kind() in DEMO_NAMES and not self.path.text():
                self.none_radio.setChecked(True)  # the demo needs no disk
        self.path.set_browsable(self.state.local, REMOTE_FILES)
        self.path.setPlaceholderText(f"automatic: {self.auto_path('<VM name>')}")
        self._sync()

    def _sync(self, *_args: object) -> None:
        creating = self.kind() == DISK_NEW
        self.disk_size.setEnabled(creating)
        self.path.setEnabled(creating)
        show_message(self.error, "")

    def problem(self, vm_name: str) -> str:
        if self.kind() != DISK_NEW or not self.state.local:
            return ""
        return rules.new_disk_problem(self.disk_path(vm_name))

    def validatePage(self) -> bool:
        if not self.path.text():
            return True  # the automatic path depends on the name: checked on the next page
        problem = self.problem("")
        show_message(self.error, problem)
        return not problem


# --- 4: name and virtualization type --------------------------------------------------------


class NamePage(QWizardPage):
    def __init__(self, state: WizardState, source: SourcePage, storage: StoragePage) -> None:
        super().__init__()
        self.state = state
        self.source = source
        self.storage = storage
        self.name_touched = False  # the user changed the proposed name: keep theirs
        self.type_touched = False  # the user picked a type: advice no longer overrides it
        self._proposed_from = ""
        self._proposed_name = ""
        self._applying = False
        self.setTitle("Name and Virtualization")
        self.setSubTitle("What the VM is called, and how its processor is provided.")
        self.name = QLineEdit()
        self.name.setObjectName("vmName")
        self.name.textChanged.connect(self._name_changed)
        self.name_error = message_label(name="nameError")

        self.kvm_radio = QRadioButton(TYPE_LABELS["kvm"])
        self.qemu_radio = QRadioButton(TYPE_LABELS["qemu"])
        self.type_group = QButtonGroup(self)
        self.type_group.addButton(self.kvm_radio)
        self.type_group.addButton(self.qemu_radio)
        self.type_group.buttonToggled.connect(self._type_toggled)
        self.type_box = QGroupBox("Virtualization type")
        type_layout = QVBoxLayout(self.type_box)
        type_layout.addWidget(self.kvm_radio)
        type_layout.addWidget(self.qemu_radio)
        self.warning = WarningBanner("emulationBanner")
        self.type_note = _hint()
        self.type_note.setObjectName("typeNote")
        type_layout.addWidget(self.warning)
        type_layout.addWidget(self.type_note)

        self.network = QComboBox()
        for key, label in NETWORKS:
            self.network.addItem(label, key)
        self.error = message_label(name="nameStorageError")

        name_field = QWidget()
        name_column = QVBoxLayout(name_field)
        name_column.setContentsMargins(0, 0, 0, 0)
        name_column.addWidget(self.name)
        name_column.addWidget(self.name_error)
        form = QFormLayout()
        form.addRow("Name:", name_field)
        form.addRow("Network:", self.network)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.type_box)
        layout.addWidget(self.error)
        layout.addStretch(1)
        state.changed.connect(self.refresh)

    def domain_type(self) -> str:
        return "kvm" if self.kvm_radio.isChecked() else "qemu"

    def vm_name(self) -> str:
        return self.name.text()

    def initializePage(self) -> None:
        main = self.source.main_file()
        if not self.name_touched and main != self._proposed_from:
            self._proposed_from = main
            self._propose(rules.unique_name(rules.name_from_file(main), self.state.taken_names()))
        self.refresh()

    def _propose(self, name: str) -> None:
        self._proposed_name = name
        self.name.setText(name)

    def refresh(self) -> None:
        """Facts arrived or the connection changed: re-check the name, re-advise the type."""
        if not self.name_touched and self._proposed_from:
            fresh = rules.unique_name(
                rules.name_from_file(self._proposed_from), self.state.taken_names()
            )
            if fresh != self.name.text():
                self._propose(fresh)
        self._check_name()
        conn = self.state.connection
        builtin = is_builtin(conn.uri)
        facts = self.state.facts
        advice = rules.type_advice(conn.uri, facts.host, facts.caps.get(conn.uri))
        self.type_box.setTitle("Processor" if builtin else "Virtualization type")
        self.kvm_radio.setVisible(not builtin)
        self.qemu_radio.setVisible(not builtin)
        self.kvm_radio.setEnabled(advice.kvm_offered)
        self.qemu_radio.setEnabled(advice.qemu_offered)
        self._applying = True
        try:
            if not self.type_touched or not self.type_group.checkedButton():
                (self.kvm_radio if advice.default == "kvm" else self.qemu_radio).setChecked(True)
            elif not advice.kvm_offered and self.kvm_radio.isChecked():
                self.qemu_radio.setChecked(True)
        finally:
            self._applying = False
        self.warning.set_text(advice.warning)
        pending = not facts.host_done and conn.backend.is_local
        if not builtin and conn.uri not in facts.caps:
            pending = True
        note = advice.note
        if pending:
            note = "Checking how this connection can run guests…"
        elif builtin:
            note = note or "The built-in VMM always uses KVM."
        show_message(self.type_note, note)

    def _name_changed(self, text: str) -> None:
        self.name_touched = text != self._proposed_name
        self._check_name()

    def _type_toggled(self, _button: object, checked: bool) -> None:
        if checked and not self._applying:
            self.type_touched = True

    def name_problem(self) -> str:
        conn = self.state.connection
        return rules.name_problem(
            self.name.text(), conn.backend.check_name, self.state.taken_names()
        )

    def _check_name(self, *_args: object) -> None:
        show_message(self.name_error, self.name_problem())
        show_message(self.error, "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.name_problem()

    def validatePage(self) -> bool:
        problem = self.name_problem() or self.storage.problem(self.name.text())
        if problem and not self.name_problem() and not self.storage.path.text():
            problem += " (The disk image is named after the VM: choose another name or file.)"
        show_message(self.error, problem)
        return not problem


# --- 5: summary ------------------------------------------------------------------------------


class SummaryPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Ready to Create the VM")
        self.setSubTitle("Check the choices; Back changes any of them.")
        self.rows = QGridLayout()
        self.rows.setColumnStretch(1, 1)
        self.rows.setHorizontalSpacing(16)
        self.start_now = QCheckBox("Start the VM when it has been created")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress.hide()
        self.status = _hint()
        self.status.setObjectName("createStatus")
        self.status.hide()
        self.error = message_label(name="createError")
        box = QGroupBox()
        box.setLayout(self.rows)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(self.start_now)
        layout.addStretch(1)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.error)

    def set_rows(self, rows: list[tuple[str, str]]) -> None:
        while self.rows.count():
            item = self.rows.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.hide()  # at once: deleteLater would leave it painted under the new rows
                w.deleteLater()
        for i, (key, value) in enumerate(rows):
            k = QLabel(f"{key}:")
            k.setStyleSheet(f"color: {HINT_COLOUR}")
            v = QLabel(value)
            v.setWordWrap(True)
            v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.rows.addWidget(k, i, 0, Qt.AlignmentFlag.AlignTop)
            self.rows.addWidget(v, i, 1)

    def summary_text(self) -> str:
        parts = []
        for i in range(self.rows.count()):
            item = self.rows.itemAt(i)
            w = item.widget() if item is not None else None
            if isinstance(w, QLabel):
                parts.append(w.text())
        return "\n".join(parts)

    def set_busy(self, text: str, percent: int | None = None) -> None:
        """A busy indicator with `text` (a percentage when known), or none when `text` is ""."""
        show_message(self.status, text)
        self.progress.setVisible(bool(text))
        self.progress.setRange(0, 0 if percent is None else 100)
        if percent is not None:
            self.progress.setValue(percent)
        if text:
            show_message(self.error, "")
