"""The port/MMIO bus: dispatch, counters, and no lock held across a device call."""

from __future__ import annotations

import threading
import time

from vmgui.vmm.devices.bus import Bus


class Register:
    def __init__(self) -> None:
        self.value = 0

    def read(self, offset: int, size: int) -> int:
        return self.value

    def write(self, offset: int, size: int, value: int) -> None:
        self.value = value


class Stalled:
    """A device whose backend stopped answering: its accesses block until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def read(self, offset: int, size: int) -> int:
        self.entered.set()
        self.release.wait()
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.read(offset, size)


def test_a_stalled_device_does_not_freeze_the_other_devices() -> None:
    """The bus held one lock across every device call: one stalled backend froze every
    device's registers for every vCPU (3 s measured with a stopped passt)."""
    bus = Bus("mmio")
    stalled, other = Stalled(), Register()
    bus.register(0x1000, 0x100, stalled, "stalled")
    bus.register(0x2000, 0x100, other, "other")
    vcpu0 = threading.Thread(target=bus.read, args=(0x1000, 4), daemon=True)
    vcpu0.start()
    try:
        assert stalled.entered.wait(5)
        started = time.monotonic()
        bus.write(0x2004, 4, 0x1234_5678)  # what vCPU 1 does meanwhile
        assert bus.read(0x2004, 2) == 0x5678
        assert bus.read(0x9000, 1) == 0xFF  # unhandled, and counted
        assert time.monotonic() - started < 0.1
        assert (bus.stats.reads, bus.stats.writes, bus.stats.unhandled_reads) == (3, 1, 1)
    finally:
        stalled.release.set()
        vcpu0.join(5)
