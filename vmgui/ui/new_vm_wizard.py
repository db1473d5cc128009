"""The New VM wizard: point and click from an ISO, a kernel or a disk image to a defined VM.

API for the main window (its "New VM" action, Ctrl+N):

    wizard = NewVmWizard(
        backends=[(uri, display_name, backend), ...],   # connected backends, chosen one first
        host_status_provider=host_status,   # async () -> HostStatus, e.g. emulation_warning's
        parent=window,                      # HostStatusCache, so the host is probed once
    )
    wizard.vmCreated.connect(lambda info: ...)  # VmInfo; the backend's events add the row too
    wizard.open()                               # window-modal, never exec()

or `info = await run_new_vm_wizard(window, backends, host_status)` (None when cancelled).
The connection's capabilities come from `backend.domain_capabilities()`, through the
connection already open (a host that asked for a password is not asked again);
`host_status_provider` may be None (no host facts: the type then follows the connection's
capabilities alone).

Finish calls `await backend.define(config)` on the running (qasync) loop, then optionally
`backend.start`. While that runs the pages are disabled and a busy bar shows; a failure is shown
on the summary page and every input stays as it was. Cancel while busy abandons cleanly: the
wizard closes at once, and a VM whose definition completes afterwards is deleted again (with
the disk image the wizard created, never an imported one).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import shiboken6
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QWidget, QWizard

from vmgui.backends.base import Backend, BackendError, DemoSources, is_builtin
from vmgui.model import DiskConfig, VmConfig, VmInfo
from vmgui.model.host import DomainCapabilities, HostStatus
from vmgui.ui.errors import log_failure, readable
from vmgui.ui.new_vm_pages import (
    DISK_EXISTING,
    DISK_NEW,
    NETWORKS,
    SOURCE_DEMO,
    SOURCE_DEMO_LINUX,
    SOURCE_IMPORT,
    SOURCE_ISO,
    SOURCE_KERNEL,
    TYPE_LABELS,
    Connection,
    NamePage,
    ResourcesPage,
    SourcePage,
    StoragePage,
    SummaryPage,
    WizardState,
)
from vmgui.ui.new_vm_rules import HostLimits, host_limits
from vmgui.ui.new_vm_widgets import show_message
from vmgui.ui.tasks import exec_async, run_for

log = logging.getLogger(__name__)

HostStatusProvider = Callable[[], Awaitable[HostStatus]]
LOOKUP_TIMEOUT_S = 30.0
GIB = 1024**3


class NewVmWizard(QWizard):
    """Five pages; the result is a VM defined on the chosen connection."""

    #: The VmInfo of the VM just defined (emitted before any start).
    vmCreated = Signal(object)

    def __init__(
        self,
        backends: Sequence[tuple[str, str, Backend]],
        host_status_provider: HostStatusProvider | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if not backends:
            raise ValueError("the New VM wizard needs at least one connection")
        self.setWindowTitle("New Virtual Machine")
        self.setObjectName("newVmWizard")
        self.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)  # a dialog never ends the app
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setMinimumSize(QSize(620, 560))
        self.state = WizardState([Connection(u, n, b) for u, n, b in backends], self)
        self._host_provider = host_status_provider
        self._lookups: list[asyncio.Future[None]] = []
        self._caps_asked: set[str] = set()
        self._names_asked: set[str] = set()
        self._limits_asked: set[str] = set()
        self._task: asyncio.Future[None] | None = None
        self._define: asyncio.Future[VmInfo] | None = None
        self._finished_ok = False
        self.created: VmInfo | None = None

        self.source = SourcePage(self.state)
        self.resources = ResourcesPage(self.state)
        self.storage = StoragePage(self.state, self.source)
        self.naming = NamePage(self.state, self.source, self.storage)
        self.summary = SummaryPage()
        for page in (self.source, self.resources, self.storage, self.naming, self.summary):
            self.addPage(page)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Create")
        self.state.changed.connect(self._look_up_connection)
        self.currentIdChanged.connect(self._page_shown)

    # --- facts, gathered without blocking ---------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._lookups:
            self._spawn(self._load_host(), "measure this computer")
            self._look_up_connection()

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._lookups.append(run_for(self, coro, what))

    async def _load_host(self) -> None:
        facts = self.state.facts
        try:
            if self._host_provider is not None:
                facts.host = await asyncio.wait_for(self._host_provider(), LOOKUP_TIMEOUT_S)
        except Exception as exc:
            log_failure(log, f"The host measurement failed: {readable(exc)}", exc)
            facts.host = None  # unknown host: the type follows the connection's capabilities
        facts.host_done = True
        self._facts_arrived()

    def _look_up_connection(self) -> None:
        if not self._lookups:
            return  # not shown yet; showEvent starts everything
        conn = self.state.connection
        if conn.uri not in self._caps_asked and not is_builtin(conn.uri):
            self._caps_asked.add(conn.uri)
            self._spawn(self._load_caps(conn), f"read the capabilities of {conn.uri}")
        if conn.uri not in self._names_asked:
            self._names_asked.add(conn.uri)
            self._spawn(self._load_names(conn), f"list the VMs of {conn.uri}")
        if conn.uri not in self.state.facts.limits and conn.uri not in self._limits_asked:
            self._limits_asked.add(conn.uri)
            self._spawn(self._load_limits(conn), f"read the resources of {conn.uri}")

    async def _load_limits(self, conn: Connection) -> None:
        try:
            resources = await asyncio.wait_for(conn.backend.host_resources(), LOOKUP_TIMEOUT_S)
            limits: HostLimits | str = host_limits(resources)
        except Exception as exc:
            log_failure(log, f"Cannot read the resources of {conn.uri}: {readable(exc)}", exc)
            limits = readable(exc) if str(exc) else "it did not answer"
        self.state.facts.limits[conn.uri] = limits
        self._facts_arrived()

    async def _load_caps(self, conn: Connection) -> None:
        uri = conn.uri
        try:
            caps = await asyncio.wait_for(conn.backend.domain_capabilities(), LOOKUP_TIMEOUT_S)
        except Exception as exc:
            log_failure(log, f"Cannot read the capabilities of {uri}: {readable(exc)}", exc)
            caps = DomainCapabilities(uri=uri, error=readable(exc))
        self.state.facts.caps[uri] = caps
        self._facts_arrived()

    async def _load_names(self, conn: Connection) -> None:
        try:
            vms = await asyncio.wait_for(conn.backend.list_vms(), LOOKUP_TIMEOUT_S)
        except Exception as exc:
            log_failure(log, f"Cannot list the VMs of {conn.uri}: {readable(exc)}", exc)
            self._names_asked.discard(conn.uri)  # ask again next time; define still refuses
            return
        self.state.facts.taken[conn.uri] = {vm.name for vm in vms}
        self._facts_arrived()

    def _facts_arrived(self) -> None:
        if shiboken6.isValid(self) and not self._busy():
            self.naming.refresh()
            self.resources.apply_limits()
            self.source.facts_arrived()

    def facts_ready(self) -> bool:
        """True once the host and the current connection have been looked up (for tests)."""
        facts = self.state.facts
        uri = self.state.connection.uri
        return (
            facts.host_done
            and (uri in facts.caps or is_builtin(uri))
            and (uri in facts.taken or uri not in self._names_asked)
            and uri in facts.limits
        )

    # --- the result ---------------------------------------------------------------------------

    def new_disk_path(self) -> str:
        return self.storage.disk_path(self.naming.vm_name())

    def config(self) -> VmConfig:
        """The VmConfig the pages describe."""
        kind = self.source.kind()
        disks: list[DiskConfig] = []
        disk_kind = self.storage.kind()
        if disk_kind == DISK_NEW:
            disks.append(
                DiskConfig(self.new_disk_path(), size_bytes=self.storage.disk_size.value() * GIB)
            )
        elif disk_kind == DISK_EXISTING:
            disks.append(DiskConfig(self.source.image.text()))
        return VmConfig(
            name=self.naming.vm_name(),
            memory_mib=self.resources.memory.value(),
            vcpus=self.resources.vcpus.value(),
            kernel=self.source.kernel.text() if kind == SOURCE_KERNEL else "",
            initrd=self.source.initrd.text() if kind == SOURCE_KERNEL else "",
            cmdline=self.source.cmdline.text().strip() if kind == SOURCE_KERNEL else "",
            iso=self.source.iso.text() if kind == SOURCE_ISO else "",
            disks=disks,
            network=str(self.naming.network.currentData()),
            domain_type=self.state.connection.backend.new_vm_defaults().fixed_domain_type
            or self.naming.domain_type(),
        )

    def _summary_rows(self) -> list[tuple[str, str]]:
        c = self.config()
        conn = self.state.connection
        kind = self.source.kind()
        if kind == SOURCE_ISO:
            source = (
                f"ISO image {c.iso} (through SeaBIOS; it stays attached, read-only)"
                if is_builtin(conn.uri)
                else f"ISO image {c.iso} (booted once; later starts boot the disk)"
            )
        elif kind == SOURCE_KERNEL:
            source = f"Linux kernel {c.kernel}" + (f" with initrd {c.initrd}" if c.initrd else "")
        elif kind == SOURCE_DEMO:
            source = "Demo: a GRUB boot menu (an ISO image built on this computer)"
        elif kind == SOURCE_DEMO_LINUX:
            source = "Demo Linux: Debian's kernel and busybox (downloaded into your cache)"
        else:
            source = f"Existing disk image {self.source.image.text()}"
        if not c.disks:
            storage = "No disk"
        elif kind == SOURCE_IMPORT:
            storage = f"{c.disks[0].path} (imported)"
        else:
            storage = f"New {c.disks[0].size_bytes // GIB} GiB image {c.disks[0].path}"
        rows = [
            ("Name", c.name),
            ("Connection", conn.name if conn.name == conn.uri else f"{conn.name} ({conn.uri})"),
            ("Installs from", source),
        ]
        if c.cmdline:
            rows.append(("Kernel command line", c.cmdline))
        rows += [
            ("Memory", f"{c.memory_mib:,} MiB"),
            ("Virtual CPUs", str(c.vcpus)),
            ("Storage", storage),
            ("Network", dict(NETWORKS).get(c.network, c.network)),
        ]
        if not is_builtin(conn.uri):
            kind_text = TYPE_LABELS[c.domain_type]
            if c.domain_type == "kvm" and self.naming.warning.text():
                kind_text += " (emulated on this computer: very slow)"
            rows.append(("Virtualization", kind_text))
        return rows

    def _page_shown(self, _page_id: int) -> None:
        if self.currentPage() is self.summary:
            self.summary.set_rows(self._summary_rows())
            show_message(self.summary.error, "")

    # --- creating -----------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def accept(self) -> None:
        """Finish ("Create"): define asynchronously; the wizard closes only when it worked."""
        if self._finished_ok:
            super().accept()
            return
        if self._busy() or self.currentPage() is not self.summary:
            return
        self._set_busy("Creating the VM…")
        self._task = run_for(self, self._create(self.config()), "create the VM")

    async def _create(self, config: VmConfig) -> None:
        conn = self.state.connection
        try:
            if self.source.kind() == SOURCE_DEMO:
                config.iso = await self._demo_iso()
            elif self.source.kind() == SOURCE_DEMO_LINUX:
                config.kernel, config.initrd, config.cmdline = await self._demo_linux()
            await self._make_disk_folder(config)
            # Not a task of the wizard: a definition under way completes even if the wizard is
            # cancelled (then _abandon deletes it again), so it is shielded, not owned.
            self._define = asyncio.ensure_future(conn.backend.define(config))
            info = await asyncio.shield(self._define)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # BackendError, or a bug: either way a sentence, inputs kept
            log_failure(log, f"Could not create {config.name}: {readable(exc)}", exc)
            self._failed(readable(exc))
            return
        self.created = info
        self.vmCreated.emit(info)
        if self.summary.start_now.isChecked():
            self._set_busy(f"Starting {info.name}…")
            try:
                await conn.backend.start(info.vm_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(log, f"Could not start {info.name}: {readable(exc)}", exc)
                self._finish_with_note(
                    f"{info.name} was created, but it could not start: {readable(exc)}"
                )
                return
        self._finished_ok = True
        self._set_busy("")
        self.accept()

    async def _demo_iso(self) -> str:
        """Build (or reuse) the Demo's ISO; Cancel stops the build (the await is cancelled)."""
        backend = self.state.connection.backend
        if not isinstance(backend, DemoSources):
            raise BackendError("This connection has no demo.")
        self._set_busy("Building the demo ISO with grub-mkrescue…")
        iso = await backend.demo_iso()
        self._set_busy("Creating the VM…")
        return iso

    async def _demo_linux(self) -> tuple[str, str, str]:
        """Fetch Debian's kernel and busybox with a progress bar; Cancel stops the download."""
        backend = self.state.connection.backend
        if not isinstance(backend, DemoSources):
            raise BackendError("This connection has no Linux demo.")

        def progress(percent: int, text: str) -> None:
            if shiboken6.isValid(self):
                self.summary.set_busy(text, percent)

        kernel, initrd, cmdline = await backend.demo_linux(progress)
        self._set_busy("Creating the VM…")
        return str(kernel), str(initrd), str(cmdline)

    async def _make_disk_folder(self, config: VmConfig) -> None:
        """The default images folder may not exist yet on a fresh machine: make it."""
        if not self.state.local or is_builtin(self.state.connection.uri):
            return
        for disk in config.disks:
            if disk.size_bytes > 0:
                folder = os.path.dirname(disk.path)
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, functools.partial(os.makedirs, folder, exist_ok=True)
                    )
                except OSError as exc:
                    raise BackendError(
                        f"Cannot create the folder {folder}: {exc.strerror or exc}."
                    ) from None

    def _set_busy(self, text: str) -> None:
        busy = bool(text)
        self.summary.set_busy(text)
        for page in (self.source, self.resources, self.storage, self.naming):
            page.setEnabled(not busy)
        self.summary.start_now.setEnabled(not busy)
        for button in (QWizard.WizardButton.BackButton, QWizard.WizardButton.FinishButton):
            b = self.button(button)
            if b is not None:
                b.setEnabled(not busy)

    def _failed(self, message: str) -> None:
        self._set_busy("")
        show_message(self.summary.error, message)

    def _finish_with_note(self, message: str) -> None:
        """The VM exists but the extra step failed: say so; Create now just closes."""
        self._finished_ok = True
        self._set_busy("")
        show_message(self.summary.error, message)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Close")
        back = self.button(QWizard.WizardButton.BackButton)
        if back is not None:
            back.setEnabled(False)

    def reject(self) -> None:
        """Cancel: while creating, abandon; a definition that still lands is undone."""
        if self._busy():
            self._abandon()
        self._stop_lookups()
        super().reject()

    def done(self, result: int) -> None:
        self._stop_lookups()
        super().done(result)

    def _abandon(self) -> None:
        define, conn = self._define, self.state.connection
        new_disks = [self.new_disk_path()] if self.storage.kind() == DISK_NEW else []
        if self._task is not None:
            self._task.cancel()
        if define is None or (define.done() and self.created is not None):
            return  # nothing sent yet, or the VM was created and reported: it stays

        def undo(fut: asyncio.Future[VmInfo]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return
            info = fut.result()
            # Owned by nobody: the wizard is gone by now; a failure is logged.
            run_for(None, conn.backend.delete(info.vm_id, new_disks),
                    f"delete the abandoned VM {info.name}")

        define.add_done_callback(undo)

    def _stop_lookups(self) -> None:
        for fut in self._lookups:
            fut.cancel()


async def run_new_vm_wizard(
    parent: QWidget | None,
    backends: Sequence[tuple[str, str, Backend]],
    host_status_provider: HostStatusProvider | None = None,
) -> VmInfo | None:
    """Open the wizard and wait (without blocking the loop) for the VM it created, if any."""
    wizard = NewVmWizard(backends, host_status_provider, parent)
    try:
        await exec_async(wizard)
        return wizard.created
    finally:
        if shiboken6.isValid(wizard):
            wizard.deleteLater()
