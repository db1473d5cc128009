"""One libvirt connection's lifecycle: open (with credentials), keepalive, loss, reconnect, close.

Threads: every libvirt call that may block (any RPC) runs in a small per-connection executor;
libvirt's own callbacks (lifecycle events, connection closed) run wherever libvirt's event loop
runs (see eventloop.py) and are marshalled onto the asyncio loop with `call_soon_threadsafe`.
All state of this object is touched on the asyncio loop's thread only.

When the daemon goes away (close callback, or keepalive noticing a dead peer within a few
seconds), calls fail at once with "Not connected to <uri>: ..." and a background task reconnects
with backoff; the owner's `on_attached` hook then re-lists what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libvirt

from vmgui.backends.base import BackendError, ConnectionChanged, EventStream
from vmgui.backends.libvirt import errors
from vmgui.backends.libvirt.credentials import SUPPORTED_CREDENTIALS, CredentialsBridge
from vmgui.backends.libvirt.eventloop import ensure_event_loop
from vmgui.model import ConnectionState, ConnectionStatus
from vmgui.model.credentials import AskCredentials

log = logging.getLogger(__name__)

KEEPALIVE_INTERVAL_S = 1  # a dead peer is noticed after about interval * (count + 1) seconds
KEEPALIVE_COUNT = 3
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 10.0
EXECUTOR_THREADS = 4

_CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "the connection failed",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the libvirt daemon closed the connection",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "the libvirt daemon stopped answering",
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "the connection was closed",
}

T = TypeVar("T")
#: Called (on the loop) with a VM's UUID when libvirt reports a lifecycle event for it.
LifecycleHook = Callable[[str], None]
#: Awaited after every successful (re)open, before the connection counts as connected again.
AttachedHook = Callable[[], Awaitable[None]]
#: Called once a lost connection is back (after the CONNECTED status was published).
ReconnectedHook = Callable[[], None]


class LibvirtConnection:
    """The `virConnect` of one URI, kept open (and reopened) on behalf of a LibvirtBackend."""

    def __init__(
        self,
        uri: str,
        stream: EventStream,
        ask_credentials: AskCredentials | None = None,
        *,
        reconnect: bool = True,
        on_lifecycle: LifecycleHook | None = None,
        on_attached: AttachedHook | None = None,
        on_reconnected: ReconnectedHook | None = None,
    ) -> None:
        self.uri = uri
        self._stream = stream
        self._credentials = CredentialsBridge(uri, ask_credentials)
        self._auto_reconnect = reconnect
        self._on_lifecycle_hook = on_lifecycle
        self._on_attached = on_attached
        self._on_reconnected = on_reconnected
        self.status = ConnectionStatus(uri, ConnectionState.DISCONNECTED, "Not connected yet.")
        self.executor = ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="libvirt-call")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.conn: libvirt.virConnect | None = None
        self.host_name = ""
        self._generation = 0  # bumped per open, so callbacks of an old connection are ignored
        self._reconnect_task: asyncio.Task[None] | None = None
        self.closed = False
        self._offline_reason = "connect() has not been called"  # for "Not connected to ...: <why>"

    def set_status(self, state: ConnectionState, message: str = "") -> None:
        self.status = ConnectionStatus(self.uri, state, message)
        self._stream.publish(ConnectionChanged(self.status))

    # --- opening ---------------------------------------------------------------------------

    async def connect(self) -> None:
        if self.closed:
            raise BackendError(f"The connection to {self.uri} was closed.")
        if self.conn is not None:
            return
        try:
            errors.validate_uri(self.uri)
        except BackendError as exc:
            self._offline_reason = "the URI is not valid"
            self.set_status(ConnectionState.DISCONNECTED, str(exc))
            raise
        self.loop = asyncio.get_running_loop()
        self._credentials.loop = self.loop
        ensure_event_loop()
        self.set_status(ConnectionState.CONNECTING, f"Connecting to {self.uri}...")
        try:
            await self._open_and_attach()
        except BackendError as exc:
            self._offline_reason = "the last attempt to connect failed"
            self.set_status(ConnectionState.DISCONNECTED, str(exc))
            raise
        self.set_status(ConnectionState.CONNECTED)

    async def _open_and_attach(self) -> None:
        loop = asyncio.get_running_loop()
        conn, host = await loop.run_in_executor(self.executor, self._open_blocking)
        self._generation += 1
        generation = self._generation
        try:
            await loop.run_in_executor(self.executor, self._register_callbacks, conn, generation)
        except libvirt.libvirtError as exc:
            await loop.run_in_executor(self.executor, self._close_quietly, conn)
            raise errors.connect_error(exc, self.uri) from None
        self.conn = conn
        self.host_name = host
        if self._on_attached is not None:
            await self._on_attached()

    def _open_blocking(self) -> tuple[libvirt.virConnect, str]:
        auth = [list(SUPPORTED_CREDENTIALS), self._credentials.answer_blocking, None]
        try:
            conn = libvirt.openAuth(self.uri, auth, 0)
        except libvirt.libvirtError as exc:
            raise errors.connect_error(exc, self.uri) from None
        if conn is None:
            raise BackendError(f"Cannot connect to {self.uri}.")
        with contextlib.suppress(libvirt.libvirtError):
            # remote connections only; local drivers (test:///) have nothing to keep alive
            conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        try:
            host = conn.getHostname()
        except libvirt.libvirtError:
            host = ""
        return conn, host

    def _register_callbacks(self, conn: libvirt.virConnect, generation: int) -> None:
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, generation
        )
        with contextlib.suppress(libvirt.libvirtError):
            conn.registerCloseCallback(self._on_close, generation)

    def _on_lifecycle(
        self, _conn: object, dom: libvirt.virDomain, _event: int, _detail: int, generation: object
    ) -> None:
        """libvirt's lifecycle callback (event-loop context): hand the VM over to the loop."""
        if self.loop is None or self.loop.is_closed():
            return
        vm_id = dom.UUIDString()  # local: the handle carries name and UUID
        self.loop.call_soon_threadsafe(self._lifecycle_on_loop, generation, vm_id)

    def _lifecycle_on_loop(self, generation: object, vm_id: str) -> None:
        if generation == self._generation and self._on_lifecycle_hook is not None:
            self._on_lifecycle_hook(vm_id)

    @staticmethod
    def _close_quietly(conn: libvirt.virConnect) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    async def close(self) -> None:
        self.closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        self._reconnect_task = None
        conn, self.conn = self.conn, None
        self._generation += 1
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(
                self.executor, self._close_quietly, conn
            )
        self.set_status(ConnectionState.DISCONNECTED, "Closed.")
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- losing and regaining the daemon ----------------------------------------------------

    def _on_close(self, _conn: libvirt.virConnect, reason: int, generation: object) -> None:
        """libvirt's close callback (event-loop context): hand over to the asyncio loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.connection_lost, generation, reason)

    def connection_lost(self, generation: object, reason: int) -> None:
        if generation != self._generation or self.closed or self.conn is None:
            return
        conn, self.conn = self.conn, None
        self._generation += 1
        why = _CLOSE_REASONS.get(reason, "the connection was lost")
        self._offline_reason = why
        log.info("%s: %s", self.uri, why)
        self.set_status(ConnectionState.DISCONNECTED, f"Disconnected from {self.uri}: {why}.")
        assert self.loop is not None
        self.loop.run_in_executor(self.executor, self._close_quietly, conn)
        if self._auto_reconnect and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = self.loop.create_task(self._reconnect_loop(why))

    async def _reconnect_loop(self, why: str) -> None:
        delay = RECONNECT_MIN_S
        while not self.closed:
            await asyncio.sleep(delay)
            try:
                await self._open_and_attach()
            except BackendError as exc:
                log.debug("%s: reconnecting failed: %s", self.uri, exc)
                delay = min(delay * 2, RECONNECT_MAX_S)
                self.set_status(
                    ConnectionState.DISCONNECTED,
                    f"Disconnected from {self.uri}: {why}; retrying in {delay:.0f} s.",
                )
                continue
            self.set_status(ConnectionState.CONNECTED)
            if self._on_reconnected is not None:
                self._on_reconnected()
            return

    # --- calls -------------------------------------------------------------------------------

    def require(self) -> libvirt.virConnect:
        """The open connection, or a BackendError saying why there is none."""
        if self.conn is None:
            why = "the connection was closed" if self.closed else self._offline_reason
            raise BackendError(f"Not connected to {self.uri}: {why}.")
        return self.conn

    async def call(self, action: str, vm_name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in the executor; libvirt errors become readable BackendErrors."""
        conn = self.require()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, fn, *args)
        except libvirt.libvirtError as exc:
            if errors.is_connection_lost(exc):
                if conn is self.conn and not _alive(conn):
                    # do not wait for the close callback to tell us what we already know
                    self.connection_lost(self._generation, libvirt.VIR_CONNECT_CLOSE_REASON_ERROR)
                raise BackendError(
                    f"Not connected to {self.uri}: the connection was lost while trying to "
                    f"{action}{f' {vm_name!r}' if vm_name else ''}."
                ) from None
            raise errors.action_error(exc, action, vm_name) from None


def _alive(conn: libvirt.virConnect) -> bool:
    """Local check (no round trip): is the connection's socket still usable?"""
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False
