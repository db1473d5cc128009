"""What a virtio device model offers its transport: features, config space, queues, processing.

Device models do no I/O scheduling of their own: the transport (mmio.py) calls `process(i)`
when the driver kicks queue i, and calls the handlers from `fds()` when a host fd is readable,
always under the transport's lock, so a model never sees two events at once. A model raises
QueueError for a guest protocol violation; the transport turns that into DEVICE_NEEDS_RESET.
"""

from __future__ import annotations

from collections.abc import Callable

from vmgui.vmm.virtio.queue import Queue


class DeviceSetupError(Exception):
    """A device model cannot start (bad disk image, no network backend): one line for the user."""


VIRTIO_ID_NET = 1
VIRTIO_ID_BLOCK = 2
VIRTIO_ID_RNG = 4

#: Called by a model after it pushed used entries on a queue (the transport decides on an IRQ).
UsedSignal = Callable[[int], None]
FdHandler = tuple[int, Callable[[], None]]


class VirtioDevice:
    """Base class: subclasses set device_id/queue_max_sizes and override process()."""

    device_id: int = 0
    queue_max_sizes: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.queues: list[Queue] | None = None
        self._used: UsedSignal = lambda _i: None

    @property
    def active(self) -> bool:
        return self.queues is not None

    def features(self) -> int:
        """Device-specific feature bits (the transport adds VERSION_1 and EVENT_IDX)."""
        return 0

    def config(self) -> bytes:
        """The device-specific configuration space, as the guest sees it at offset 0x100."""
        return b""

    def write_config(self, offset: int, data: bytes) -> None:
        """Guest write into config space; read-only by default."""

    def activate(self, queues: list[Queue], used: UsedSignal, features: int) -> None:
        self.queues = queues
        self._used = used

    def deactivate(self) -> None:
        """Stop touching guest memory (driver reset, or the device broke)."""
        self.queues = None

    def process(self, queue_index: int) -> None:
        """Handle a driver kick on one queue."""

    def fds(self) -> list[FdHandler]:
        """Host fds the I/O thread should poll, with the handler to run when readable."""
        return []

    def byte_counters(self) -> tuple[str, dict[str, int]] | None:
        """(x-vmgui-stats section, counters) of the bytes this device moved for the guest, for
        the VM's disk and network graphs; devices of one section are summed."""
        return None

    def close(self) -> None:
        """Release host resources (files, sockets, helper processes)."""

    def _queue(self, index: int) -> Queue | None:
        if self.queues is None or not 0 <= index < len(self.queues):
            return None
        q = self.queues[index]
        return q if q.ready else None
