"""The asynchronous Backend protocol: the only thing the UI knows about hypervisors.

Both the libvirt backend and the built-in backend implement `Backend`. Every method is a
coroutine that never blocks the event loop (blocking work goes to an executor). Failures raise
`BackendError` whose message is a sentence a person can read; a failed action changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vmgui.model import ConnectionStatus, StorageItem, VmConfig, VmInfo, VmStatsSample
from vmgui.model.console import ByteStream, ConsoleEndpoints
from vmgui.model.host import HostResources
from vmgui.model.vm_settings import ApplyResult, VmSettings

#: The connection of the built-in VMM ("This computer"); every other URI is libvirt's.
BUILTIN_URI = "builtin:///"


def is_builtin(uri: str) -> bool:
    return uri.startswith("builtin:")


class BackendError(Exception):
    """An error worth showing to the user as is (no traceback, one or two sentences)."""


@dataclass(frozen=True)
class VmChanged:
    """A VM appeared or changed (state, name, memory...)."""

    vm: VmInfo


@dataclass(frozen=True)
class VmRemoved:
    connection: str
    vm_id: str


@dataclass(frozen=True)
class ConnectionChanged:
    status: ConnectionStatus


BackendEvent = VmChanged | VmRemoved | ConnectionChanged


class EventStream:
    """Fan-out of backend events to any number of async subscribers.

    `publish` is called on the event-loop thread; each subscriber gets its own queue so a slow
    consumer never makes another miss events.
    """

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[BackendEvent | None]] = []

    def publish(self, event: BackendEvent) -> None:
        for q in list(self._queues):
            q.put_nowait(event)

    def close(self) -> None:
        for q in list(self._queues):
            q.put_nowait(None)

    async def subscribe(self) -> AsyncIterator[BackendEvent]:
        q: asyncio.Queue[BackendEvent | None] = asyncio.Queue()
        self._queues.append(q)
        try:
            while True:
                ev = await q.get()
                if ev is None:
                    return
                yield ev
        finally:
            self._queues.remove(q)


@runtime_checkable
class Backend(Protocol):
    """One connection: a libvirt URI or the built-in VMM ("builtin:///")."""

    @property
    def uri(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def status(self) -> ConnectionStatus: ...

    async def connect(self) -> None:
        """Open the connection; raises BackendError with a readable reason."""

    async def close(self) -> None: ...

    def events(self) -> AsyncIterator[BackendEvent]:
        """VM lifecycle and connection-state events, pushed (no polling by the caller)."""
        ...

    async def list_vms(self) -> list[VmInfo]: ...

    async def define(self, config: VmConfig) -> VmInfo: ...

    async def host_resources(self) -> HostResources:
        """Memory and CPUs of the machine running this connection's VMs (not necessarily ours)."""

    async def start(self, vm_id: str) -> None: ...

    async def shutdown(self, vm_id: str) -> None:
        """Graceful: ask the guest (ACPI power button) to power off."""

    async def reboot(self, vm_id: str) -> None: ...

    async def force_off(self, vm_id: str) -> None: ...

    async def pause(self, vm_id: str) -> None: ...

    async def resume(self, vm_id: str) -> None: ...

    async def list_storage(self, vm_id: str) -> list[StorageItem]:
        """Every disk source of the VM, each saying whether `delete` may remove it and why not."""

    async def delete(self, vm_id: str, storage_paths: Sequence[str] = ()) -> None:
        """Remove the definition (refused while running), then the listed storage.

        Only paths `list_storage` calls deletable are removed (checked again here); any other
        path, or a removal that fails, ends in a BackendError after the definition is gone.
        """

    async def get_settings(self, vm_id: str) -> VmSettings:
        """What the Edit dialog shows: the settings of the VM's next start."""

    async def apply_settings(self, vm_id: str, settings: VmSettings) -> ApplyResult:
        """Save `settings` for the next start (CD media of a running VM change at once).

        The hypervisor validates; a refusal is a BackendError sentence and changes nothing.
        """

    async def sample_stats(self) -> list[VmStatsSample]:
        """Raw counters of every running VM, in one round trip."""

    async def details_xml(self, vm_id: str) -> str:
        """A read-only description (libvirt: domain XML) for the details view."""

    async def open_console(self, vm_id: str) -> ConsoleEndpoints:
        """Where the VM's graphical console is (data only: `vmgui.console.open_source` connects).

        Raises BackendError when the VM is not running; a VM without graphics gets
        `graphics=None` and a `problem` sentence.
        """

    async def open_serial(self, vm_id: str) -> ByteStream:
        """The VM's serial console as a byte stream; BackendError when it has none."""


async def find_vm(backend: Backend, name: str) -> VmInfo:
    """The VM called `name` (or with that id); BackendError with a sentence when there is none."""
    for vm in await backend.list_vms():
        if name in (vm.name, vm.vm_id):
            return vm
    raise BackendError(f"There is no VM named “{name}” on {backend.uri}.")
