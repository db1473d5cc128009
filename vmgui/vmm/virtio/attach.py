"""Plug virtio-mmio devices into a KVM VM: MMIO window, ioeventfd per queue, irqfd, I/O thread.

Device i sits at layout.VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE on GSI layout.VIRTIO_IRQS[i] and
is announced to the guest as `virtio_mmio.device=<size>@<base>:<irq>` (see `cmdline()`).

Threading: QueueNotify writes are caught by KVM (ioeventfd with datamatch = queue index), so
the vCPU never exits for a kick; each device's own I/O thread reads the eventfd and runs the
request. Interrupts go out through an irqfd (a write to an eventfd raises the GSI in the
kernel). All other register accesses are ordinary MMIO exits handled on the vCPU thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

from vmgui.vmm import layout
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.errors import VmmError
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.record import TYPE_CHECKING, field, record
from vmgui.vmm.virtio.device import DeviceSetupError, VirtioDevice
from vmgui.vmm.virtio.iothread import IoThread
from vmgui.vmm.virtio.mmio import REG_QUEUE_NOTIFY, VirtioMmioTransport

DeviceFactory = Callable[[], VirtioDevice]


if TYPE_CHECKING:  # typing costs ~4 ms of VMM start-up
    from typing import Protocol

    class EventfdVm(Protocol):
        """The two vmgui.vmm.kvm.VmFd calls we need (a Protocol keeps tests free to pass a VmFd)."""

        def irqfd(self, fd: int, gsi: int) -> None: ...

        def ioeventfd(
            self, fd: int, addr: int, length: int, *, datamatch: int | None = None
        ) -> None: ...


def slot_base(index: int) -> int:
    return layout.VIRTIO_MMIO_BASE + index * layout.VIRTIO_MMIO_SIZE


def cmdline(count: int) -> str:
    """Kernel command line words announcing `count` devices (Linux virtio_mmio's own syntax)."""
    return " ".join(
        f"virtio_mmio.device={layout.VIRTIO_MMIO_SIZE >> 10}K@{slot_base(i):#x}:{layout.VIRTIO_IRQS[i]}"
        for i in range(count)
    )


@record
class AttachedDevice:
    transport: VirtioMmioTransport
    io: IoThread
    irq_fd: int
    notify_fds: list[int] = field(default_factory=list)


class VirtioDevices:
    """Every virtio device of one power-on; `close()` stops threads and releases host resources."""

    def __init__(self) -> None:
        self.devices: list[AttachedDevice] = []

    @property
    def cmdline(self) -> str:
        return cmdline(len(self.devices))

    @property
    def transports(self) -> list[VirtioMmioTransport]:
        return [d.transport for d in self.devices]

    def byte_counters(self) -> dict[str, dict[str, int]]:
        """x-vmgui-stats sections ("disk", "net") with each device's byte counters summed."""
        out: dict[str, dict[str, int]] = {}
        for d in self.devices:
            counted = d.transport.device.byte_counters()
            if counted is not None:
                section = out.setdefault(counted[0], {})
                for key, n in counted[1].items():
                    section[key] = section.get(key, 0) + n
        return out

    def stop(self, timeout: float | None = None) -> bool:
        """Stop every I/O thread; False when one is still stuck in a handler after `timeout`
        seconds in all (then do not close: it still uses the device)."""
        import time  # noqa: PLC0415

        deadline = None if timeout is None else time.monotonic() + timeout
        return all(
            [
                d.io.stop(None if deadline is None else max(deadline - time.monotonic(), 0.0))
                for d in self.devices
            ]
        )

    def close(self) -> None:
        """Release every device; call stop() first when a thread may be stuck."""
        for d in self.devices:
            d.io.stop()
            d.transport.close()
            for fd in (d.irq_fd, *d.notify_fds):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.devices = []


def add_virtio_devices(
    vm: EventfdVm, mem: GuestMemory, mmio_bus: Bus, factories: Sequence[DeviceFactory]
) -> VirtioDevices:
    """Create each device from its factory and wire it into the VM; VmmError if one cannot start."""
    if len(factories) > min(layout.VIRTIO_MAX_DEVICES, len(layout.VIRTIO_IRQS)):
        raise VmmError(f"at most {layout.VIRTIO_MAX_DEVICES} virtio devices")
    result = VirtioDevices()
    try:
        for index, factory in enumerate(factories):
            result.devices.append(_attach(vm, mem, mmio_bus, index, factory))
    except DeviceSetupError as e:
        result.close()
        raise VmmError(str(e)) from None
    except BaseException:
        result.close()
        raise
    return result


def _attach(
    vm: EventfdVm, mem: GuestMemory, mmio_bus: Bus, index: int, factory: DeviceFactory
) -> AttachedDevice:
    device = factory()
    base, gsi = slot_base(index), layout.VIRTIO_IRQS[index]
    irq_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    transport = VirtioMmioTransport(device, mem, lambda: os.eventfd_write(irq_fd, 1))
    attached = AttachedDevice(transport, IoThread(f"virtio{index}-{type(device).__name__}"), irq_fd)
    try:
        vm.irqfd(irq_fd, gsi)
        for q in range(len(transport.queues)):
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            attached.notify_fds.append(efd)
            vm.ioeventfd(efd, base + REG_QUEUE_NOTIFY, 4, datamatch=q)
            attached.io.add_eventfd(efd, _notifier(transport, q))
        for fd, handler in transport.fds():
            attached.io.add_fd(fd, handler)
        mmio_bus.register(base, layout.VIRTIO_MMIO_SIZE, transport, f"virtio{index}")
        attached.io.start()
    except BaseException:
        attached.io.stop()
        transport.close()
        for fd in (irq_fd, *attached.notify_fds):
            os.close(fd)
        raise
    return attached


def _notifier(transport: VirtioMmioTransport, queue: int) -> Callable[[], None]:
    return lambda: transport.notify(queue)
