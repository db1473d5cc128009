"""The asynchronous Backend protocol: the only thing the UI knows about hypervisors.

Both the libvirt backend and the built-in backend implement `Backend`. Every method is a
coroutine that never blocks the event loop (blocking work goes to an executor). Failures raise
`BackendError` whose message is a sentence a person can read; a failed action changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from vmgui.model import ConnectionStatus, StorageItem, VmConfig, VmInfo, VmStatsSample
from vmgui.model.console import ByteStream, ConsoleEndpoints
from vmgui.model.details import HardwareRow, NewVmDefaults
from vmgui.model.host import DomainCapabilities, HostResources
from vmgui.model.vm_settings import ApplyResult, VmSettings

#: The connection of the built-in VMM ("This computer"); every other URI is libvirt's.
BUILTIN_URI = "builtin:///"


def is_builtin(uri: str) -> bool:
    return uri.startswith("builtin:")


def is_local_uri(uri: str) -> bool:
    """True when the connection's VMs use this machine's files and CPU (no remote host)."""
    if is_builtin(uri):
        return True
    parts = urlsplit(uri)
    if parts.scheme.startswith("test"):
        return True
    return (parts.hostname or "") in ("", "localhost", "127.0.0.1", "::1")


class BackendError(Exception):
    """An error worth showing to the user as is (no traceback, one or two sentences)."""


#: libvirt's remote transports (driver+transport://host/path).
_TRANSPORTS = frozenset({"unix", "tcp", "tls", "ssh", "libssh", "libssh2", "ext"})
_DRIVER = re.compile(r"^[a-z][a-z0-9]*$")


def validate_uri(uri: str) -> str:
    """Return the URI stripped, or raise BackendError saying what is wrong with it."""
    text = uri.strip()
    if not text:
        raise BackendError("The connection URI is empty; try qemu:///system or test:///default.")
    if any(c.isspace() for c in text):
        raise BackendError(f"The connection URI '{text}' contains spaces.")
    if "://" not in text:
        raise BackendError(
            f"'{text}' is not a libvirt URI: it needs the form driver[+transport]://[host]/path, "
            "e.g. qemu:///system."
        )
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a non-numeric port
    except ValueError as exc:
        raise BackendError(f"'{text}' is not a valid URI: {exc}.") from None
    del port
    driver, _plus, transport = parts.scheme.partition("+")
    if not _DRIVER.match(driver):
        raise BackendError(f"'{text}' has an invalid driver name '{driver}'.")
    if transport and transport not in _TRANSPORTS:
        raise BackendError(
            f"'{text}' uses the unknown transport '{transport}' "
            f"(use one of: {', '.join(sorted(_TRANSPORTS))})."
        )
    return text


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

    @property
    def host_name(self) -> str:
        """The host's own name once connected ("" before), for the list's Host column."""

    @property
    def is_local(self) -> bool:
        """The VMs run on this machine (its files, its CPU): see `is_local_uri`."""

    async def connect(self) -> None:
        """Open the connection; raises BackendError with a readable reason."""

    async def close(self) -> None: ...

    def events(self) -> AsyncIterator[BackendEvent]:
        """VM lifecycle and connection-state events, pushed (no polling by the caller)."""
        ...

    async def list_vms(self) -> list[VmInfo]: ...

    async def define(self, config: VmConfig) -> VmInfo: ...

    def check_name(self, name: str) -> None:
        """Raise BackendError with a sentence when `name` cannot name a VM here."""

    def new_vm_defaults(self) -> NewVmDefaults:
        """What the New VM wizard proposes for this connection."""

    async def domain_capabilities(self) -> DomainCapabilities:
        """What this connection can run (domain types, machines, firmware), read through the
        connection already open (its credentials, no second connection). Never raises: a
        failure is the result's `error`."""

    async def host_resources(self) -> HostResources:
        """Memory and CPUs of the machine running this connection's VMs (not necessarily ours)."""

    async def start(self, vm_id: str) -> None: ...

    async def shutdown(self, vm_id: str) -> None:
        """Graceful: ask the guest (ACPI power button) to power off."""

    async def reboot(self, vm_id: str) -> None:
        """Graceful: ask the guest to power off (ACPI), then start it again."""

    async def reset(self, vm_id: str) -> None:
        """Forced: restart at once, like a machine's reset button (the guest is not asked)."""

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

    async def hardware_rows(self, vm_id: str) -> list[HardwareRow]:
        """The VM's devices, one row each, for the details view's Hardware tab."""

    async def domain_type(self, vm_id: str) -> str:
        """How the VM runs: "kvm" (hardware-assisted) or "qemu" (TCG emulation), or another
        hypervisor's type name; "" when unknown."""

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


# --- optional abilities: a backend has them or not; test with isinstance() ---------------------


@runtime_checkable
class SourceChecks(Protocol):
    """Checks of a boot file the backend can make itself (the built-in VMM: its kernel loader,
    ISO magic, disks other VMs use). Each returns a sentence, or "" when the file is fine."""

    async def kernel_problem(self, path: str) -> str: ...

    async def iso_problem(self, path: str) -> str: ...

    async def disk_problem(self, path: str, exclude: str = "") -> str: ...


@runtime_checkable
class DemoSources(Protocol):
    """Ready-made guests a backend can offer in the wizard without the user's own media."""

    def demo_problem(self) -> str:
        """Why the GRUB demo cannot be offered ("" when it can)."""

    async def demo_iso(self) -> str:
        """The demo ISO's path (built on first use; cancelling the await stops the build)."""

    async def demo_linux(self, progress: Callable[[int, str], None]) -> tuple[str, str, str]:
        """Kernel, initrd and command line of the Linux demo (fetched on first use)."""
