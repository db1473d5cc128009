"""Owns the open connections: connects them, pumps their events into the VM model, samples stats.

All of it runs as asyncio tasks on the qasync loop (the GUI thread), so model updates need no
locks; the backends do their blocking work in executors. Events are coalesced: everything that
arrived since the last turn of the loop is applied to the model as one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from vmgui.backends.base import (
    Backend,
    BackendError,
    BackendEvent,
    ConnectionChanged,
    VmChanged,
    VmRemoved,
)
from vmgui.model import (
    ConnectionState,
    ConnectionStatus,
    VmInfo,
    VmStatsSample,
    rates_between,
)
from vmgui.settings import DEFAULT_STATS_INTERVAL_S
from vmgui.ui.errors import log_failure, readable
from vmgui.ui.tasks import run_for
from vmgui.ui.vm_model import VmKey, VmTableModel

log = logging.getLogger(__name__)

BackendFactory = Callable[[str], Backend]


@dataclass
class Session:
    uri: str
    backend: Backend | None = None
    status: ConnectionStatus = field(init=False)
    populated: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    last_samples: dict[str, VmStatsSample] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = ConnectionStatus(self.uri, ConnectionState.CONNECTING)


class ConnectionManager(QObject):
    status_changed = Signal(object)  # ConnectionStatus
    populated = Signal(str)  # uri: its VM list has been loaded (or failed to)
    stats_updated = Signal(str, list)  # uri, list[VmKey] that got a new sample
    failed = Signal(str)  # a sentence: a connection's task failed unexpectedly (logged)

    def __init__(self, model: VmTableModel, factory: BackendFactory, parent: QObject | None = None):
        super().__init__(parent)
        self._model = model
        self._factory = factory
        self._sessions: dict[str, Session] = {}
        self.stats_interval_s: float = DEFAULT_STATS_INTERVAL_S
        self._pending: dict[str, list[BackendEvent]] = {}
        self._flush_scheduled = False

    # ---- queries ---------------------------------------------------------------------------

    def uris(self) -> list[str]:
        return list(self._sessions)

    def backend(self, uri: str) -> Backend | None:
        s = self._sessions.get(uri)
        return s.backend if s else None

    def backends(self) -> list[Backend]:
        """The backends made so far (connected or not), in the order they were added."""
        return [s.backend for s in self._sessions.values() if s.backend is not None]

    def status(self, uri: str) -> ConnectionStatus | None:
        s = self._sessions.get(uri)
        return s.status if s else None

    def error(self, uri: str) -> str:
        s = self._sessions.get(uri)
        return s.error if s else ""

    async def wait_populated(self, uris: list[str] | None = None) -> dict[str, str]:
        """Wait until each connection listed its VMs or failed; returns {uri: error} failures."""
        targets = [self._sessions[u] for u in (uris or self.uris()) if u in self._sessions]
        await asyncio.gather(*(s.populated.wait() for s in targets))
        return {s.uri: s.error for s in targets if s.error}

    # ---- lifecycle -------------------------------------------------------------------------

    def add(self, uri: str) -> None:
        if uri in self._sessions:
            return
        session = Session(uri)
        self._sessions[uri] = session
        self._start(session, self._run(session), f"connect to {uri}")

    async def remove(self, uri: str) -> None:
        session = self._sessions.pop(uri, None)
        if session is None:
            return
        await self._stop(session)
        self._model.remove_connection(uri)

    async def reconnect(self, uri: str) -> None:
        session = self._sessions.get(uri)
        if session is None:
            return
        await self._stop(session)
        fresh = Session(uri)
        self._sessions[uri] = fresh
        self._start(fresh, self._run(fresh), f"connect to {uri}")

    def _start(self, session: Session, coro: Coroutine[Any, Any, None], what: str) -> None:
        """A task of this connection: cancelled when it is removed, logged if it fails."""
        session.tasks.append(run_for(self, coro, what, report=self._report))

    def _report(self, sentence: str, _details: str) -> None:
        """A connection's background task failed (already logged): let the window say so."""
        self.failed.emit(sentence)

    async def close_all(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(self._stop(s) for s in sessions), return_exceptions=True)

    async def _stop(self, session: Session) -> None:
        for t in session.tasks:
            t.cancel()
        await asyncio.gather(*session.tasks, return_exceptions=True)
        session.tasks.clear()
        if session.backend is not None:
            try:
                await session.backend.close()
            except Exception:  # closing must go on for the other connections; a bug is logged
                log.exception("closing %s failed", session.uri)

    def _set_status(self, session: Session, status: ConnectionStatus) -> None:
        session.status = status
        self.status_changed.emit(status)

    async def _run(self, session: Session) -> None:
        uri = session.uri
        self._set_status(session, ConnectionStatus(uri, ConnectionState.CONNECTING))
        try:
            backend = self._factory(uri)
            session.backend = backend
            self._model.set_host_label(uri, backend.display_name)
            # Subscribe before connecting so no event between connect and list is missed.
            self._start(session, self._pump(session, backend), f"follow the events of {uri}")
            await asyncio.sleep(0)
            await backend.connect()
            self._set_status(session, ConnectionStatus(uri, ConnectionState.CONNECTED))
            if backend.host_name:
                self._model.set_host_label(uri, backend.host_name)
            await self._refresh(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure becomes the connection's message
            session.error = readable(exc)
            log_failure(log, f"Cannot connect to {uri}: {session.error}", exc)
            self._set_status(
                session, ConnectionStatus(uri, ConnectionState.DISCONNECTED, session.error)
            )
            session.populated.set()
            self.populated.emit(uri)
            return
        session.populated.set()
        self.populated.emit(uri)
        self._start(session, self._sample(session, backend), f"sample the statistics of {uri}")

    async def _refresh(self, session: Session) -> None:
        assert session.backend is not None
        vms = await session.backend.list_vms()
        self._flush()  # events that arrived while listing must not be applied over the list
        self._model.replace_connection(session.uri, vms)

    async def _pump(self, session: Session, backend: Backend) -> None:
        # Taken once: a later step may be resumed by a Qt callback while asyncio does not count
        # the loop as running (qasync between run_until_complete calls), and then
        # get_running_loop() would raise, killing the pump with the flush flag left set.
        loop = asyncio.get_running_loop()
        async for event in backend.events():
            self._pending.setdefault(session.uri, []).append(event)
            if not self._flush_scheduled:
                loop.call_soon(self._flush)
                self._flush_scheduled = True

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for uri, events in pending.items():
            session = self._sessions.get(uri)
            if session is None:
                continue
            self._apply(session, events)

    def _apply(self, session: Session, events: list[BackendEvent]) -> None:
        changed: list[VmInfo] = []
        for ev in events:
            if isinstance(ev, VmChanged):
                changed.append(ev.vm)
                continue
            # Keep ordering: apply the run of changes before a removal or state change.
            if changed:
                self._model.upsert(changed)
                changed = []
            if isinstance(ev, VmRemoved):
                self._model.remove([(ev.connection, ev.vm_id)])
            elif isinstance(ev, ConnectionChanged):
                was = session.status.state
                self._set_status(session, ev.status)
                if (
                    ev.status.state == ConnectionState.CONNECTED
                    and was != ConnectionState.CONNECTED
                    and session.populated.is_set()
                ):
                    # Reconnected: VMs may have changed while we were away; list them afresh.
                    self._start(session, self._refresh_quietly(session),
                                f"list the VMs of {session.uri}")
        if changed:
            self._model.upsert(changed)

    async def _refresh_quietly(self, session: Session) -> None:
        """After a reconnect; if listing fails, the backend's next status event says why."""
        with contextlib.suppress(BackendError, OSError):
            await self._refresh(session)

    # ---- stats -----------------------------------------------------------------------------

    async def _sample(self, session: Session, backend: Backend) -> None:
        while True:
            if session.status.state == ConnectionState.CONNECTED:
                try:
                    samples = await backend.sample_stats()
                except BackendError:
                    samples = []  # the connection's events say why; try again next tick
                self.apply_samples(session.uri, samples)
            await asyncio.sleep(self.stats_interval_s)

    def apply_samples(self, uri: str, samples: list[VmStatsSample]) -> list[VmKey]:
        """Derive rates against the previous tick and push them to the model in one batch."""
        session = self._sessions.get(uri)
        if session is None:
            return []
        previous = session.last_samples
        rates = [rates_between(previous[s.vm_id], s) for s in samples if s.vm_id in previous]
        session.last_samples = {s.vm_id: s for s in samples}
        keys = self._model.apply_rates(uri, rates)
        if keys:
            self.stats_updated.emit(uri, keys)
        return keys

