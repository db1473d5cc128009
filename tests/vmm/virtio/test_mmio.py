"""virtio-mmio v2 transport registers, negotiation and failure handling, via the real rng model."""

from __future__ import annotations

import logging
import struct

import pytest

from tests.vmm.virtio.driver import DATA_BASE, Buf, Driver
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio import mmio
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.rng import VirtioRng


def rng_transport(mem: GuestMemory) -> tuple[VirtioMmioTransport, list[int]]:
    irqs: list[int] = []
    return VirtioMmioTransport(VirtioRng(), mem, lambda: irqs.append(1)), irqs


def test_identity_registers(mem: GuestMemory) -> None:
    t, _ = rng_transport(mem)
    assert t.read(mmio.REG_MAGIC, 4) == 0x74726976
    assert t.read(mmio.REG_VERSION, 4) == 2
    assert t.read(mmio.REG_DEVICE_ID, 4) == 4
    d = Driver(t, mem)
    assert d.features() & mmio.VIRTIO_F_VERSION_1


def test_driver_without_version_1_is_refused_features_ok(mem: GuestMemory) -> None:
    t, _ = rng_transport(mem)
    t.write(mmio.REG_STATUS, 4, mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_DRIVER)
    t.write(mmio.REG_DRIVER_FEATURES_SEL, 4, 1)
    t.write(mmio.REG_DRIVER_FEATURES, 4, 0)
    t.write(mmio.REG_STATUS, 4, 0xB)
    assert not t.read(mmio.REG_STATUS, 4) & mmio.STATUS_FEATURES_OK


def test_unaligned_and_wrong_size_accesses_are_ignored_and_counted(mem: GuestMemory) -> None:
    t, _ = rng_transport(mem)
    assert t.read(mmio.REG_MAGIC, 2) == 0
    assert t.read(mmio.REG_MAGIC + 1, 4) == 0
    t.write(mmio.REG_STATUS, 1, 3)
    t.write(0x0F0, 4, 1)  # no such register
    assert t.read(mmio.REG_STATUS, 4) == 0
    assert t.stats.bad_accesses == 4


def test_request_completes_and_interrupt_is_acknowledged(mem: GuestMemory) -> None:
    t, irqs = rng_transport(mem)
    d = Driver(t, mem)
    d.setup()
    d.queues[0].submit([Buf(DATA_BASE, 64, True)])
    d.kick(0)
    assert d.queues[0].used_entries() == [(0, 64)]
    assert irqs == [1]
    assert t.read(mmio.REG_INTERRUPT_STATUS, 4) == mmio.INT_USED_BUFFER
    t.write(mmio.REG_INTERRUPT_ACK, 4, mmio.INT_USED_BUFFER)
    assert t.read(mmio.REG_INTERRUPT_STATUS, 4) == 0


def test_guest_violation_sets_needs_reset_and_stops_queue_until_reset(mem: GuestMemory) -> None:
    t, irqs = rng_transport(mem)
    d = Driver(t, mem)
    d.setup()
    q = d.queues[0]
    mem.write(q.desc, struct.pack("<QIHH", 0xFFFF_0000_0000, 64, 2, 0))  # not RAM
    mem.write_u16(q.avail + 4, 0)
    mem.write_u16(q.avail + 2, 1)
    d.kick(0)
    assert d.needs_reset()
    assert t.read(mmio.REG_INTERRUPT_STATUS, 4) & mmio.INT_CONFIG_CHANGE
    assert t.read(mmio.REG_CONFIG_GENERATION, 4) == 1
    assert irqs == [1]
    # A valid request now is not touched: the device is stopped.
    mem.write(q.desc, struct.pack("<QIHH", DATA_BASE, 8, 2, 0))
    d.kick(0)
    assert q.used_entries() == []
    # Reset (Status = 0) and renegotiate: works again.
    d.setup()
    assert not d.needs_reset()
    d.queues[0].submit([Buf(DATA_BASE, 8, True)])
    d.kick(0)
    assert d.queues[0].used_entries() == [(0, 8)]


def test_bad_ring_address_on_queue_ready_breaks_only_this_device(mem: GuestMemory) -> None:
    t, _ = rng_transport(mem)
    t.write(mmio.REG_STATUS, 4, 3)
    t.write(mmio.REG_QUEUE_SEL, 4, 0)
    t.write(mmio.REG_QUEUE_NUM, 4, 16)
    t.write(mmio.REG_QUEUE_DESC_LOW, 4, 0x10001)  # misaligned
    t.write(mmio.REG_QUEUE_READY, 4, 1)
    assert t.read(mmio.REG_QUEUE_READY, 4) == 0
    assert t.read(mmio.REG_STATUS, 4) & mmio.STATUS_DEVICE_NEEDS_RESET
    assert "aligned" in t.stats.last_error


def test_queue_config_is_frozen_while_ready_and_unknown_queue_reads_zero(mem: GuestMemory) -> None:
    t, _ = rng_transport(mem)
    d = Driver(t, mem)
    d.setup()
    t.write(mmio.REG_QUEUE_SEL, 4, 0)
    t.write(mmio.REG_QUEUE_NUM, 4, 4)
    assert t.read(mmio.REG_QUEUE_NUM, 4) == 16
    t.write(mmio.REG_QUEUE_SEL, 4, 7)
    assert t.read(mmio.REG_QUEUE_NUM_MAX, 4) == 0
    assert t.read(mmio.REG_SHM_LEN_LOW, 4) == 0xFFFF_FFFF


def test_event_idx_suppresses_interrupts(mem: GuestMemory) -> None:
    t, irqs = rng_transport(mem)
    d = Driver(t, mem)
    d.setup(features=mmio.VIRTIO_F_VERSION_1 | mmio.VIRTIO_F_RING_EVENT_IDX)
    q = d.queues[0]
    mem.write_u16(q.avail + 4 + 2 * q.size, 5)  # used_event: only after entry 6
    for _ in range(3):
        q.submit([Buf(DATA_BASE, 4, True)])
    d.kick(0)
    assert len(q.used_entries()) == 3 and irqs == []


def test_closed_transport_lets_guest_memory_be_unmapped() -> None:
    mem = GuestMemory.create(4 << 20)
    t, _ = rng_transport(mem)
    d = Driver(t, mem)
    d.setup()
    d.queues[0].submit([Buf(DATA_BASE, 8, True)])
    d.kick(0)
    t.close()
    mem.close()
    assert mem.regions[0].mm.closed  # no ring view kept the mapping alive (reboots would leak RAM)


class CountingRng(VirtioRng):
    activations = 0

    def activate(self, *args: object, **kwargs: object) -> None:
        type(self).activations += 1
        super().activate(*args, **kwargs)  # type: ignore[arg-type]


def test_status_cannot_go_backwards_without_a_reset(mem: GuestMemory) -> None:
    """virtio 1.x §2.1.2: the driver never clears a status bit; only writing 0 resets. Clearing
    DRIVER_OK and setting it again must not activate the device a second time."""
    dev = CountingRng()
    t = VirtioMmioTransport(dev, mem, lambda: None)
    Driver(t, mem).setup()
    live = t.read(mmio.REG_STATUS, 4)
    assert live & mmio.STATUS_DRIVER_OK and dev.activations == 1
    for backwards in (live & ~mmio.STATUS_DRIVER_OK, mmio.STATUS_ACKNOWLEDGE, live & ~1):
        t.write(mmio.REG_STATUS, 4, backwards)
        assert t.read(mmio.REG_STATUS, 4) == live
    t.write(mmio.REG_STATUS, 4, live)
    assert dev.activations == 1
    assert t.stats.ignored_writes == 3
    t.write(mmio.REG_STATUS, 4, 0)
    Driver(t, mem).setup()
    assert dev.activations == 2


def test_status_bits_need_their_predecessors(mem: GuestMemory) -> None:
    t, _ = rng_transport(mem)
    t.write(mmio.REG_DRIVER_FEATURES_SEL, 4, 1)
    t.write(mmio.REG_DRIVER_FEATURES, 4, 1)  # VERSION_1: FEATURES_OK is acceptable by itself
    for skipping in (mmio.STATUS_DRIVER, mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_FEATURES_OK,
                     mmio.STATUS_ACKNOWLEDGE | mmio.STATUS_DRIVER | mmio.STATUS_DRIVER_OK):
        t.write(mmio.REG_STATUS, 4, skipping)
        assert t.read(mmio.REG_STATUS, 4) == 0
    t.write(mmio.REG_STATUS, 4, mmio.STATUS_FAILED)  # giving up is always allowed
    assert t.read(mmio.REG_STATUS, 4) == mmio.STATUS_FAILED


class ExplodingRng(VirtioRng):
    def process(self, queue_index: int) -> None:
        raise IndexError("index out of range")


def test_no_exception_escapes_a_device_model(mem: GuestMemory,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A device-model bug breaks that device (DEVICE_NEEDS_RESET, config interrupt) with one
    log line; the caller (a vCPU or the I/O thread) never sees the exception."""
    irqs: list[int] = []
    t = VirtioMmioTransport(ExplodingRng(), mem, lambda: irqs.append(1))
    d = Driver(t, mem)
    d.setup()
    d.queues[0].submit([Buf(DATA_BASE, 64, True)])
    caplog.set_level(logging.WARNING)
    t.notify(0)  # the I/O thread's path (ioeventfd), which has no safety net of its own
    assert d.needs_reset() and irqs == [1]
    assert t.stats.internal_errors == 1
    [line] = caplog.records
    assert "IndexError" in line.getMessage() and line.exc_info is None
