"""LibvirtBackend: one libvirt connection behind the asynchronous Backend protocol.

The parts: connection.py keeps the `virConnect` open (credentials, keepalive, reconnect) and runs
every blocking call in its executor; listing.py reads VMs and statistics; provisioning.py
defines and deletes. This class ties them to the protocol and keeps the VM list following
libvirt's lifecycle events: each event makes one worker fetch that VM's current state (so a
burst of events ends in the true final state) and publish VmChanged/VmRemoved; nothing is polled.
After a reconnect everything is listed and published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import libvirt

from vmgui.backends.base import (
    BackendError,
    BackendEvent,
    EventStream,
    VmChanged,
    VmRemoved,
    is_local_uri,
)
from vmgui.backends.libvirt import (
    boot_files,
    console,
    describe,
    domain_settings,
    domain_xml,
    domcaps,
    editing,
    listing,
    provisioning,
    storage,
)
from vmgui.backends.libvirt.connection import LibvirtConnection
from vmgui.model import ConnectionStatus, StorageItem, VmConfig, VmInfo, VmStatsSample
from vmgui.model.console import ByteStream, ConsoleEndpoints
from vmgui.model.credentials import AskCredentials
from vmgui.model.details import HardwareRow, NewVmDefaults
from vmgui.model.host import DomainCapabilities, HostResources
from vmgui.model.vm_settings import ApplyResult, VmSettings

log = logging.getLogger(__name__)


class LibvirtBackend:
    """A libvirt URI (qemu:///system, qemu+tcp://host/system, test:///path, ...)."""

    def __init__(
        self,
        uri: str,
        ask_credentials: AskCredentials | None = None,
        *,
        reconnect: bool = True,
    ) -> None:
        self._uri = uri.strip()
        self._stream = EventStream()
        self.connection = LibvirtConnection(
            self._uri,
            self._stream,
            ask_credentials,
            reconnect=reconnect,
            on_lifecycle=self._queue_event,
            on_attached=self._list_quietly,
            on_reconnected=self._publish_all,
        )
        self._known: dict[str, VmInfo] = {}
        self._pending_events: dict[str, None] = {}  # insertion-ordered set of VM ids
        self._event_wakeup = asyncio.Event()
        self._event_task: asyncio.Task[None] | None = None

    # --- identity and status ----------------------------------------------------------------

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def display_name(self) -> str:
        return self._uri

    @property
    def host_name(self) -> str:
        """The daemon's host name (for the list's "host" column); empty until connected."""
        return self.connection.host_name

    @property
    def status(self) -> ConnectionStatus:
        return self.connection.status

    @property
    def is_local(self) -> bool:
        return is_local_uri(self._uri)

    def events(self) -> AsyncIterator[BackendEvent]:
        return self._stream.subscribe()

    # --- connecting ----------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._event_task is None and not self.connection.closed:
            self._event_task = asyncio.get_running_loop().create_task(self._event_worker())
        await self.connection.connect()

    async def close(self) -> None:
        if self._event_task is not None:
            self._event_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._event_task
        self._event_task = None
        await self.connection.close()
        self._stream.close()

    async def _list_quietly(self) -> None:
        """After each (re)open: learn the VMs; if that fails, the next call says why."""
        with contextlib.suppress(BackendError):
            await self.list_vms()

    def _publish_all(self) -> None:
        for vm in list(self._known.values()):
            self._stream.publish(VmChanged(vm))

    # --- lifecycle events --------------------------------------------------------------------

    def _queue_event(self, vm_id: str) -> None:
        self._pending_events[vm_id] = None
        self._event_wakeup.set()

    async def _event_worker(self) -> None:
        while True:
            await self._event_wakeup.wait()
            self._event_wakeup.clear()
            while self._pending_events:
                vm_id = next(iter(self._pending_events))
                del self._pending_events[vm_id]
                await self._refresh_one(vm_id)

    async def _refresh_one(self, vm_id: str) -> None:
        conn = self.connection.conn
        if conn is None:
            return
        try:
            info = await asyncio.get_running_loop().run_in_executor(
                self.connection.executor, listing.info_blocking, conn, self._uri, vm_id
            )
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                return  # connection trouble: the close callback deals with it
            info = None
        if info is None:
            if self._known.pop(vm_id, None) is not None:
                self._stream.publish(VmRemoved(self._uri, vm_id))
            return
        self._known[vm_id] = info
        self._stream.publish(VmChanged(info))

    # --- listing and describing ---------------------------------------------------------------

    async def list_vms(self) -> list[VmInfo]:
        conn = self.connection.require()
        infos = await self.connection.call(
            "list the VMs of", self._uri, listing.list_blocking, conn, self._uri
        )
        fresh = {vm.vm_id: vm for vm in infos}
        for gone in set(self._known) - set(fresh):
            self._stream.publish(VmRemoved(self._uri, gone))
        self._known = fresh
        return infos

    async def host_resources(self) -> HostResources:
        conn = self.connection.require()
        info = await self.connection.call(
            "read the host of", self._uri, conn.getInfo  # virNodeGetInfo
        )
        return HostResources(memory_mib=int(info[1]), cpus=int(info[2]))

    async def details_xml(self, vm_id: str) -> str:
        conn = self.connection.require()
        return await self.connection.call(
            "describe", self._name_of(vm_id), lambda: conn.lookupByUUIDString(vm_id).XMLDesc(0)
        )

    async def hardware_rows(self, vm_id: str) -> list[HardwareRow]:
        return describe.hardware_rows(await self.details_xml(vm_id))

    async def domain_type(self, vm_id: str) -> str:
        return describe.domain_type_of(await self.details_xml(vm_id))

    async def domain_capabilities(self) -> DomainCapabilities:
        try:
            conn = self.connection.require()
            return await self.connection.call(
                "read the capabilities of", self._uri, domcaps.read_capabilities, conn, self._uri
            )
        except BackendError as exc:
            return DomainCapabilities(uri=self._uri, error=str(exc))

    async def open_console(self, vm_id: str) -> ConsoleEndpoints:
        conn = self.connection.require()
        return await self.connection.call(
            "open the console of", self._name_of(vm_id),
            console.console_endpoints_blocking, conn, self._uri, vm_id,
        )  # fmt: skip

    async def open_serial(self, vm_id: str) -> ByteStream:
        conn = self.connection.require()
        return await console.open_serial(conn, vm_id, self._name_of(vm_id), self.connection.call)

    def _name_of(self, vm_id: str) -> str:
        known = self._known.get(vm_id)
        return known.name if known else vm_id

    async def kernel_problem(self, path: str) -> str:
        """The wizard's check of a direct-boot kernel: "" when `path` is a kernel image (or the
        file is on another machine and cannot be read from here), else why not."""
        if not self.is_local:
            return ""
        return await asyncio.get_running_loop().run_in_executor(
            self.connection.executor, boot_files.kernel_problem, path
        )

    async def iso_problem(self, path: str) -> str:
        """Nothing beyond the wizard's own file checks: QEMU boots what the media holds."""
        return ""

    async def disk_problem(self, path: str, exclude: str = "") -> str:
        """Nothing beyond the wizard's own checks; libvirt refuses images it cannot use."""
        return ""

    # --- defining and deleting ---------------------------------------------------------------

    def check_name(self, name: str) -> None:
        domain_xml.check_name(name)

    def new_vm_defaults(self) -> NewVmDefaults:
        return NewVmDefaults(disk_folder=domain_xml.default_disk_folder(self._uri))

    async def define(self, config: VmConfig) -> VmInfo:
        conn = self.connection.require()
        xml = domain_xml.build_domain_xml(config)  # bad input stops here, before any change
        info = await self.connection.call(
            "create", config.name, provisioning.define_blocking, conn, self._uri, config, xml
        )
        self._known[info.vm_id] = info
        return info

    async def list_storage(self, vm_id: str) -> list[StorageItem]:
        conn = self.connection.require()
        local = is_local_uri(self._uri)

        def items() -> list[StorageItem]:
            return storage.storage_items(conn, conn.lookupByUUIDString(vm_id), local)

        return await self.connection.call("list the storage of", self._name_of(vm_id), items)

    async def delete(self, vm_id: str, storage_paths: Sequence[str] = ()) -> None:
        conn = self.connection.require()
        await self.connection.call(
            "delete", self._name_of(vm_id), provisioning.delete_blocking,
            conn, self._uri, vm_id, list(storage_paths),
        )

    # --- editing ---------------------------------------------------------------------------

    async def get_settings(self, vm_id: str) -> VmSettings:
        conn = self.connection.require()
        return await self.connection.call(
            "read the settings of", self._name_of(vm_id), editing.settings_blocking, conn, vm_id
        )

    async def apply_settings(self, vm_id: str, settings: VmSettings) -> ApplyResult:
        conn = self.connection.require()
        if settings.domain_type in domain_settings.DOMAIN_TYPES:
            domain_settings.check_settings(settings)  # a sentence before anything changes
        return await self.connection.call(
            "change", self._name_of(vm_id), editing.apply_blocking, conn, vm_id, settings
        )

    # --- lifecycle actions -------------------------------------------------------------------

    async def _domain_action(self, vm_id: str, action: str, op: Callable[[Any], object]) -> None:
        conn = self.connection.require()

        def run() -> None:
            op(conn.lookupByUUIDString(vm_id))

        await self.connection.call(action, self._name_of(vm_id), run)

    async def start(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "start", _start_blocking)

    async def shutdown(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "shut down", lambda d: d.shutdown())

    async def reboot(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "reboot", lambda d: d.reboot(0))

    async def reset(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "reset", lambda d: d.reset(0))

    async def force_off(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "force off", lambda d: d.destroy())

    async def pause(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "pause", lambda d: d.suspend())

    async def resume(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "resume", lambda d: d.resume())

    # --- statistics --------------------------------------------------------------------------

    async def sample_stats(self) -> list[VmStatsSample]:
        conn = self.connection.require()
        return await self.connection.call(
            "read statistics from", self._uri, listing.stats_blocking, conn
        )


def _start_blocking(dom: libvirt.virDomain) -> None:
    dom.create()
    try:
        final = domain_xml.after_install_boot(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if final is not None:  # the install media has booted once: next time the disk
            dom.connect().defineXML(final)
    except (libvirt.libvirtError, ET.ParseError):
        log.warning("could not switch %s to boot from its disk", dom.name(), exc_info=True)
