"""LibvirtBackend: one libvirt connection behind the asynchronous Backend protocol.

Threads: every libvirt call that may block (any RPC) runs in a small per-connection executor;
libvirt's own callbacks (lifecycle events, connection closed) run wherever libvirt's event loop
runs (see eventloop.py) and are marshalled onto the asyncio loop with `call_soon_threadsafe`.
All state of this object is touched on the asyncio loop's thread only.

The VM list follows lifecycle events: each event makes one worker fetch that VM's current state
(so a burst of events ends in the true final state) and publish VmChanged/VmRemoved; nothing is
polled. When the daemon goes away (close callback, or keepalive noticing a dead peer within a few
seconds), calls fail at once with "Not connected to <uri>: ..." and a background task reconnects
with backoff, then re-lists and publishes everything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import libvirt

from vmgui.backends.base import (
    BackendError,
    BackendEvent,
    ConnectionChanged,
    EventStream,
    VmChanged,
    VmRemoved,
)
from vmgui.backends.libvirt import (
    console,
    domain_settings,
    domain_xml,
    domcaps,
    errors,
    stats,
    storage,
)
from vmgui.backends.libvirt.credentials import (
    SUPPORTED_CREDENTIALS,
    AskCredentials,
    prompts_for,
)
from vmgui.backends.libvirt.eventloop import ensure_event_loop
from vmgui.model import (
    ConnectionState,
    ConnectionStatus,
    StorageItem,
    VmConfig,
    VmInfo,
    VmStatsSample,
)
from vmgui.model.console import ByteStream, ConsoleEndpoints
from vmgui.model.host import HostResources
from vmgui.model.vm_settings import ApplyResult, VmSettings

KEEPALIVE_INTERVAL_S = 1  # a dead peer is noticed after about interval * (count + 1) seconds
KEEPALIVE_COUNT = 3
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 10.0
CREDENTIALS_TIMEOUT_S = 300.0
EXECUTOR_THREADS = 4

_CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "the connection failed",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the libvirt daemon closed the connection",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "the libvirt daemon stopped answering",
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "the connection was closed",
}

T = TypeVar("T")
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
        self._ask_credentials = ask_credentials
        self._auto_reconnect = reconnect
        self._status = ConnectionStatus(
            self._uri, ConnectionState.DISCONNECTED, "Not connected yet."
        )
        self._stream = EventStream()
        self._executor = ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="libvirt-call")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: libvirt.virConnect | None = None
        self._generation = 0  # bumped per open, so callbacks of an old connection are ignored
        self._host_name = ""
        self._known: dict[str, VmInfo] = {}
        self._pending_events: dict[str, None] = {}  # insertion-ordered set of VM ids
        self._event_wakeup = asyncio.Event()
        self._event_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closed = False
        self._offline_reason = "connect() has not been called"  # for "Not connected to ...: <why>"

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
        return self._host_name

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    def events(self) -> AsyncIterator[BackendEvent]:
        return self._stream.subscribe()

    def _set_status(self, state: ConnectionState, message: str = "") -> None:
        self._status = ConnectionStatus(self._uri, state, message)
        self._stream.publish(ConnectionChanged(self._status))

    # --- connecting ----------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._closed:
            raise BackendError(f"The connection to {self._uri} was closed.")
        if self._conn is not None:
            return
        try:
            errors.validate_uri(self._uri)
        except BackendError as exc:
            self._offline_reason = "the URI is not valid"
            self._set_status(ConnectionState.DISCONNECTED, str(exc))
            raise
        self._loop = asyncio.get_running_loop()
        ensure_event_loop()
        if self._event_task is None:
            self._event_task = self._loop.create_task(self._event_worker())
        self._set_status(ConnectionState.CONNECTING, f"Connecting to {self._uri}...")
        try:
            await self._open_and_attach()
        except BackendError as exc:
            self._offline_reason = "the last attempt to connect failed"
            self._set_status(ConnectionState.DISCONNECTED, str(exc))
            raise
        self._set_status(ConnectionState.CONNECTED)

    async def _open_and_attach(self) -> list[VmInfo]:
        loop = asyncio.get_running_loop()
        conn, host = await loop.run_in_executor(self._executor, self._open_blocking)
        self._generation += 1
        generation = self._generation
        try:
            await loop.run_in_executor(self._executor, self._register_callbacks, conn, generation)
        except libvirt.libvirtError as exc:
            await loop.run_in_executor(self._executor, self._close_quietly, conn)
            raise errors.connect_error(exc, self._uri) from None
        self._conn = conn
        self._host_name = host
        try:
            return await self.list_vms()
        except BackendError:
            return []

    def _open_blocking(self) -> tuple[libvirt.virConnect, str]:
        auth = [list(SUPPORTED_CREDENTIALS), self._credentials_blocking, None]
        try:
            conn = libvirt.openAuth(self._uri, auth, 0)
        except libvirt.libvirtError as exc:
            raise errors.connect_error(exc, self._uri) from None
        if conn is None:
            raise BackendError(f"Cannot connect to {self._uri}.")
        with contextlib.suppress(libvirt.libvirtError):
            # remote connections only; local drivers (test:///) have nothing to keep alive
            conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        try:
            host = conn.getHostname()
        except libvirt.libvirtError:
            host = ""
        return conn, host

    def _credentials_blocking(self, creds: list[list[Any]], _opaque: object) -> int:
        """Runs inside openAuth on an executor thread: ask the UI on the loop and wait."""
        if self._ask_credentials is None or self._loop is None:
            return -1
        ask, prompts = self._ask_credentials, prompts_for(creds)

        async def ask_on_loop() -> list[str] | None:
            return await ask(self._uri, prompts)

        future = asyncio.run_coroutine_threadsafe(ask_on_loop(), self._loop)
        try:
            answers = future.result(timeout=CREDENTIALS_TIMEOUT_S)
        except Exception:
            future.cancel()
            return -1
        if answers is None or len(answers) != len(creds):
            return -1
        for cred, answer in zip(creds, answers, strict=True):
            cred[4] = answer
        return 0

    def _register_callbacks(self, conn: libvirt.virConnect, generation: int) -> None:
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, generation
        )
        with contextlib.suppress(libvirt.libvirtError):
            conn.registerCloseCallback(self._on_close, generation)

    @staticmethod
    def _close_quietly(conn: libvirt.virConnect) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    async def close(self) -> None:
        self._closed = True
        for task in (self._reconnect_task, self._event_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reconnect_task = self._event_task = None
        conn, self._conn = self._conn, None
        self._generation += 1
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._close_quietly, conn
            )
        self._status = ConnectionStatus(self._uri, ConnectionState.DISCONNECTED, "Closed.")
        self._stream.publish(ConnectionChanged(self._status))
        self._stream.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- losing and regaining the daemon ----------------------------------------------------

    def _on_close(self, _conn: libvirt.virConnect, reason: int, generation: object) -> None:
        """libvirt's close callback (event-loop context): hand over to the asyncio loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._connection_lost, generation, reason)

    def _connection_lost(self, generation: object, reason: int) -> None:
        if generation != self._generation or self._closed or self._conn is None:
            return
        conn, self._conn = self._conn, None
        self._generation += 1
        why = _CLOSE_REASONS.get(reason, "the connection was lost")
        self._offline_reason = why
        self._set_status(ConnectionState.DISCONNECTED, f"Disconnected from {self._uri}: {why}.")
        assert self._loop is not None
        self._loop.run_in_executor(self._executor, self._close_quietly, conn)
        if self._auto_reconnect and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = self._loop.create_task(self._reconnect_loop(why))

    async def _reconnect_loop(self, why: str) -> None:
        delay = RECONNECT_MIN_S
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                vms = await self._open_and_attach()
            except BackendError:
                delay = min(delay * 2, RECONNECT_MAX_S)
                self._set_status(
                    ConnectionState.DISCONNECTED,
                    f"Disconnected from {self._uri}: {why}; retrying in {delay:.0f} s.",
                )
                continue
            self._set_status(ConnectionState.CONNECTED)
            for vm in vms:
                self._stream.publish(VmChanged(vm))
            return

    def _require_conn(self) -> libvirt.virConnect:
        if self._conn is None:
            why = "the connection was closed" if self._closed else self._offline_reason
            raise BackendError(f"Not connected to {self._uri}: {why}.")
        return self._conn

    async def _call(self, action: str, vm_name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in the executor; libvirt errors become readable BackendErrors."""
        conn = self._require_conn()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except libvirt.libvirtError as exc:
            if errors.is_connection_lost(exc):
                if conn is self._conn and not _alive(conn):
                    # do not wait for the close callback to tell us what we already know
                    self._connection_lost(self._generation, libvirt.VIR_CONNECT_CLOSE_REASON_ERROR)
                raise BackendError(
                    f"Not connected to {self._uri}: the connection was lost while trying to "
                    f"{action}{f' {vm_name!r}' if vm_name else ''}."
                ) from None
            raise errors.action_error(exc, action, vm_name) from None

    # --- lifecycle events --------------------------------------------------------------------

    def _on_lifecycle(
        self, _conn: object, dom: libvirt.virDomain, _event: int, _detail: int, generation: object
    ) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        vm_id = dom.UUIDString()  # local: the handle carries name and UUID
        self._loop.call_soon_threadsafe(self._queue_event, generation, vm_id)

    def _queue_event(self, generation: object, vm_id: str) -> None:
        if generation != self._generation:
            return
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
        conn = self._conn
        if conn is None:
            return
        try:
            info = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._info_blocking, conn, vm_id
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

    def _info_blocking(self, conn: libvirt.virConnect, vm_id: str) -> VmInfo:
        dom = conn.lookupByUUIDString(vm_id)
        state, reason = dom.state()
        _st, max_kib, _cur, vcpus, _cpu = dom.info()
        try:
            autostart = bool(dom.autostart())
        except libvirt.libvirtError:
            autostart = False
        return VmInfo(
            connection=self._uri,
            vm_id=vm_id,
            name=dom.name(),
            state=stats.vm_state(state),
            memory_kib=int(max_kib),
            vcpus=int(vcpus),
            persistent=bool(dom.isPersistent()),
            autostart=autostart,
            reason=stats.state_reason(state, reason),
        )

    # --- listing --------------------------------------------------------------------------

    async def list_vms(self) -> list[VmInfo]:
        conn = self._require_conn()
        infos = await self._call("list the VMs of", self._uri, self._list_blocking, conn)
        fresh = {vm.vm_id: vm for vm in infos}
        for gone in set(self._known) - set(fresh):
            self._stream.publish(VmRemoved(self._uri, gone))
        self._known = fresh
        return infos

    def _list_blocking(self, conn: libvirt.virConnect) -> list[VmInfo]:
        """Three round trips whatever the number of VMs (stats for state/memory/vCPUs)."""
        records = conn.getAllDomainStats(stats.LIST_GROUPS, 0)
        transient = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)
        autostart = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        infos = []
        for dom, rec in records:
            vm_id = dom.UUIDString()
            state = int(rec.get("state.state", libvirt.VIR_DOMAIN_NOSTATE))
            reason = int(rec.get("state.reason", 0))
            max_kib = int(rec.get("balloon.maximum", 0))
            vcpus = int(rec.get("vcpu.maximum", rec.get("vcpu.current", 0)))
            if not max_kib or not vcpus:
                # drivers without those stats (test:///, inactive VMs on some versions)
                _st, max_kib, _cur, vcpus, _cpu = dom.info()
            infos.append(
                VmInfo(
                    connection=self._uri,
                    vm_id=vm_id,
                    name=dom.name(),
                    state=stats.vm_state(state),
                    memory_kib=int(max_kib),
                    vcpus=int(vcpus),
                    persistent=vm_id not in transient,
                    autostart=vm_id in autostart,
                    reason=stats.state_reason(state, reason),
                )
            )
        return infos

    async def host_resources(self) -> HostResources:
        conn = self._require_conn()
        info = await self._call("read the host of", self._uri, conn.getInfo)  # virNodeGetInfo
        return HostResources(memory_mib=int(info[1]), cpus=int(info[2]))

    async def details_xml(self, vm_id: str) -> str:
        conn = self._require_conn()
        return await self._call(
            "describe", self._name_of(vm_id), lambda: conn.lookupByUUIDString(vm_id).XMLDesc(0)
        )

    async def open_console(self, vm_id: str) -> ConsoleEndpoints:
        conn = self._require_conn()
        return await self._call(
            "open the console of", self._name_of(vm_id),
            console.console_endpoints_blocking, conn, self._uri, vm_id,
        )  # fmt: skip

    async def open_serial(self, vm_id: str) -> ByteStream:
        conn = self._require_conn()
        return await console.open_serial(conn, vm_id, self._name_of(vm_id), self._call)

    def _name_of(self, vm_id: str) -> str:
        known = self._known.get(vm_id)
        return known.name if known else vm_id

    # --- defining and deleting ---------------------------------------------------------------

    async def define(self, config: VmConfig) -> VmInfo:
        conn = self._require_conn()
        xml = domain_xml.build_domain_xml(config)  # bad input stops here, before any change
        info = await self._call("create", config.name, self._define_blocking, conn, config, xml)
        self._known[info.vm_id] = info
        return info

    def _define_blocking(self, conn: libvirt.virConnect, config: VmConfig, xml: str) -> VmInfo:
        created: list[Callable[[], None]] = []  # undo steps for images made here
        try:
            for disk in config.disks:
                if disk.size_bytes > 0:
                    created.append(self._create_image_blocking(conn, disk.path, disk.size_bytes))
            dom = conn.defineXML(xml)
        except BaseException:
            for undo in reversed(created):
                with contextlib.suppress(Exception):
                    undo()
            raise
        info = self._info_blocking(conn, dom.UUIDString())
        return info

    def _create_image_blocking(
        self, conn: libvirt.virConnect, path: str, size_bytes: int
    ) -> Callable[[], None]:
        """Create a raw image in the storage pool holding `path`'s folder, else locally."""
        with contextlib.suppress(libvirt.libvirtError):
            conn.storageVolLookupByPath(path)
            raise BackendError(f"The disk image {path} already exists; choose another file name.")
        folder, name = os.path.split(path)
        with contextlib.suppress(libvirt.libvirtError):
            for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
                target = domain_xml.pool_target_path(pool.XMLDesc(0))
                if target and os.path.realpath(target) == os.path.realpath(folder):
                    vol = pool.createXML(domain_xml.raw_volume_xml(name, size_bytes), 0)
                    return lambda: vol.delete(0)
        if not errors.is_local_uri(self._uri):
            raise BackendError(
                f"Cannot create {path}: no storage pool on {self._uri} holds that folder."
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise BackendError(
                f"The disk image {path} already exists; choose another file name."
            ) from None
        except OSError as exc:
            raise BackendError(f"Cannot create the disk image {path}: {exc.strerror}.") from None
        try:
            os.ftruncate(fd, size_bytes)
        finally:
            os.close(fd)
        return lambda: os.remove(path)

    async def list_storage(self, vm_id: str) -> list[StorageItem]:
        conn = self._require_conn()
        local = errors.is_local_uri(self._uri)

        def items() -> list[StorageItem]:
            return storage.storage_items(conn, conn.lookupByUUIDString(vm_id), local)

        return await self._call("list the storage of", self._name_of(vm_id), items)

    async def delete(self, vm_id: str, storage_paths: Sequence[str] = ()) -> None:
        conn = self._require_conn()
        name = self._name_of(vm_id)
        paths = list(storage_paths)
        await self._call("delete", name, self._delete_blocking, conn, vm_id, paths)

    def _delete_blocking(self, conn: libvirt.virConnect, vm_id: str, paths: list[str]) -> None:
        dom = conn.lookupByUUIDString(vm_id)
        name = dom.name()
        if dom.isActive():
            raise BackendError(f"Cannot delete '{name}' while it is running: shut it down first.")
        local = errors.is_local_uri(self._uri)
        items = storage.storage_items(conn, dom, local) if paths else []
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (
                libvirt.VIR_ERR_NO_SUPPORT,
                libvirt.VIR_ERR_INVALID_ARG,
                libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
            ):
                raise
            dom.undefine()
        failed = storage.delete_paths(conn, items, paths, local)
        if failed:
            raise BackendError(
                f"'{name}' was deleted, but not all of its storage: " + "; ".join(failed) + "."
            )

    # --- editing ---------------------------------------------------------------------------

    async def get_settings(self, vm_id: str) -> VmSettings:
        conn = self._require_conn()
        return await self._call("read the settings of", self._name_of(vm_id),
                                self._settings_blocking, conn, vm_id)

    @staticmethod
    def _settings_blocking(conn: libvirt.virConnect, vm_id: str) -> VmSettings:
        dom = conn.lookupByUUIDString(vm_id)
        settings = domain_settings.read_settings(
            dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), bool(dom.autostart())
        )
        try:
            guests = domcaps.parse_capabilities(conn.getCapabilities())
        except (libvirt.libvirtError, domcaps.DomainCapabilitiesError):
            return settings
        arch = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("os/type")
        wanted = arch.get("arch", "x86_64") if arch is not None else "x86_64"
        offered = [t for g in guests if g.arch == wanted for t in g.domain_types]
        types = tuple(dict.fromkeys([*offered, settings.domain_type]))
        return replace(settings, domain_types=types)

    async def apply_settings(self, vm_id: str, settings: VmSettings) -> ApplyResult:
        conn = self._require_conn()
        if settings.domain_type in domain_settings.DOMAIN_TYPES:
            domain_settings.check_settings(settings)  # a sentence before anything changes
        return await self._call("change", self._name_of(vm_id),
                                self._apply_blocking, conn, vm_id, settings)

    @staticmethod
    def _apply_blocking(conn: libvirt.virConnect, vm_id: str, new: VmSettings) -> ApplyResult:
        dom = conn.lookupByUUIDString(vm_id)
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        old = domain_settings.read_settings(inactive, bool(dom.autostart()))
        conn.defineXMLFlags(
            domain_settings.apply_settings(inactive, new), libvirt.VIR_DOMAIN_DEFINE_VALIDATE
        )
        if new.autostart != old.autostart:
            dom.setAutostart(int(new.autostart))
        running = bool(dom.isActive())
        if running:  # media changes like a real drive; the rest waits for the next start
            live = {c.device: c.media for c in domain_settings.read_settings(
                dom.XMLDesc(0), False).cdroms}
            for drive in new.cdroms:
                xml = domain_settings.cdrom_device_xml(inactive, drive)
                if xml is not None and live.get(drive.device, drive.media) != drive.media:
                    dom.updateDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        return ApplyResult(
            restart_needed=running and domain_settings.settings_need_restart(old, new)
        )

    # --- lifecycle actions -------------------------------------------------------------------

    async def _domain_action(self, vm_id: str, action: str, op: Callable[[Any], object]) -> None:
        conn = self._require_conn()

        def run() -> None:
            op(conn.lookupByUUIDString(vm_id))

        await self._call(action, self._name_of(vm_id), run)

    async def start(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "start", self._start_blocking)

    def _start_blocking(self, dom: libvirt.virDomain) -> None:
        dom.create()
        try:
            final = domain_xml.after_install_boot(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            if final is not None:  # the install media has booted once: next time the disk
                dom.connect().defineXML(final)
        except (libvirt.libvirtError, ET.ParseError):
            log.warning("could not switch %s to boot from its disk", dom.name(), exc_info=True)

    async def shutdown(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "shut down", lambda d: d.shutdown())

    async def reboot(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "reboot", lambda d: d.reboot(0))

    async def force_off(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "force off", lambda d: d.destroy())

    async def pause(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "pause", lambda d: d.suspend())

    async def resume(self, vm_id: str) -> None:
        await self._domain_action(vm_id, "resume", lambda d: d.resume())

    # --- statistics --------------------------------------------------------------------------

    async def sample_stats(self) -> list[VmStatsSample]:
        conn = self._require_conn()
        return await self._call("read statistics from", self._uri, self._stats_blocking, conn)

    @staticmethod
    def _stats_blocking(conn: libvirt.virConnect) -> list[VmStatsSample]:
        records = conn.getAllDomainStats(
            stats.STATS_GROUPS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
        )
        now = time.monotonic()
        return stats.samples_from_records(((d.UUIDString(), r) for d, r in records), now)


def _alive(conn: libvirt.virConnect) -> bool:
    """Local check (no round trip): is the connection's socket still usable?"""
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def _uuids(conn: libvirt.virConnect, flags: int) -> set[str]:
    try:
        return {d.UUIDString() for d in conn.listAllDomains(flags)}
    except libvirt.libvirtError:
        return set()
