"""Small helpers for driving LibvirtBackend from tests on the qasync loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt

from vmgui.backends.base import BackendEvent, ConnectionChanged, VmChanged, VmRemoved
from vmgui.backends.libvirt import LibvirtBackend
from vmgui.model import ConnectionState, VmState


class EventRecorder:
    """Subscribes before the action under test, so no event can be missed."""

    def __init__(self, backend: LibvirtBackend) -> None:
        self.events: list[tuple[float, BackendEvent]] = []
        self._changed = asyncio.Event()
        self._backend = backend
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> EventRecorder:
        ready = asyncio.Event()

        async def consume() -> None:
            stream = self._backend.events()
            first = asyncio.ensure_future(stream.__anext__())
            ready.set()
            with contextlib.suppress(StopAsyncIteration):
                self._add(await first)
                async for ev in stream:
                    self._add(ev)

        self._task = asyncio.ensure_future(consume())
        await ready.wait()
        await asyncio.sleep(0)  # let the generator register its queue
        return self

    def _add(self, ev: BackendEvent) -> None:
        self.events.append((time.monotonic(), ev))
        self._changed.set()

    async def wait_for(
        self, pred: Callable[[BackendEvent], bool], timeout: float, after: int = 0
    ) -> BackendEvent:
        """The first event (at index >= `after`) matching `pred`, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            for _t, ev in self.events[after:]:
                if pred(ev):
                    return ev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [ev for _t, ev in self.events[after:]]
                raise AssertionError(f"no matching event within {timeout} s; saw {seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def mark(self) -> int:
        return len(self.events)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def vm_state_is(vm_id: str, state: VmState) -> Callable[[BackendEvent], bool]:
    return lambda ev: isinstance(ev, VmChanged) and ev.vm.vm_id == vm_id and ev.vm.state is state


def vm_removed(vm_id: str) -> Callable[[BackendEvent], bool]:
    return lambda ev: isinstance(ev, VmRemoved) and ev.vm_id == vm_id


def connection_is(state: ConnectionState) -> Callable[[BackendEvent], bool]:
    return lambda ev: isinstance(ev, ConnectionChanged) and ev.status.state is state


def libvirt_state(uri: str, vm_id: str) -> int | None:
    """What libvirt itself says, over an independent connection (None: no such domain)."""
    conn = libvirt.open(uri)
    try:
        return int(conn.lookupByUUIDString(vm_id).state()[0])
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def remove_domain(uri: str, name: str) -> None:
    """Test cleanup on the shared daemon: force off and undefine `name` if it exists."""
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(name)
        with contextlib.suppress(libvirt.libvirtError):
            dom.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            dom.undefine()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


@contextlib.contextmanager
def dir_pool(uri: str, home: Path, name: str) -> Iterator[tuple[libvirt.virConnect, Path]]:
    """A transient directory pool under the daemon's home, so the daemon's user owns its images.

    Yields an open connection and the pool's folder; the pool and the connection go at exit.
    """
    folder = home / f"pool-{name}"
    conn = libvirt.open(uri)
    pool = conn.storagePoolCreateXML(
        f"<pool type='dir'><name>{name}</name><target><path>{folder}</path></target></pool>",
        libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD,
    )
    try:
        yield conn, folder
    finally:
        pool.destroy()
        conn.close()
