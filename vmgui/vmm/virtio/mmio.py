"""virtio-mmio transport, version 2 (virtio 1.x §4.2), as a Bus device.

Guest-visible contract: a VIRTIO_MMIO_SIZE window; 32-bit aligned 32-bit register accesses below
0x100, any 1/2/4/8-byte access in the device config space from 0x100. Other accesses are ignored
(reads give 0) and counted, never fatal. Offered transport features: VIRTIO_F_VERSION_1 (the
driver must accept it) and VIRTIO_F_RING_EVENT_IDX. Interrupt status bit 0 = used buffer,
bit 1 = configuration change; the line is pulsed through the injected `interrupt()` callback
(the machine writes an irqfd eventfd; tests count calls).

Status follows the spec's state machine (virtio 1.x §2.1, §3.1.1): without a reset (writing 0)
the driver can only add bits, in order ACKNOWLEDGE -> DRIVER -> FEATURES_OK -> DRIVER_OK
(FAILED at any time); any other write is ignored and counted, so a device can never go back
and be activated twice.

On a QueueError (or any guest-memory error) the transport sets DEVICE_NEEDS_RESET, raises a
configuration-change interrupt, and the device stops touching its queues until the driver writes
0 to Status. Any other exception from a device model (our bug, or a host error nobody
anticipated) ends the same way and is counted as an internal error: nothing escapes a device
model, and each failure is one log line. The VMM and other devices keep running.

Threading: register accesses arrive on vCPU threads; `notify()` arrives on the device's I/O
thread (ioeventfd) or a vCPU thread (no ioeventfd). One lock per transport serializes device
state and queue processing; the interrupt status has its own small lock so a vCPU reading or
acknowledging it never waits behind disk I/O.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Callable

from vmgui.vmm.memory import GuestMemory, GuestMemoryError
from vmgui.vmm.record import TYPE_CHECKING, record
from vmgui.vmm.virtio.device import FdHandler, VirtioDevice
from vmgui.vmm.virtio.queue import Queue, QueueError

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    """Imported on first use: only error paths log, and logging costs ~3 ms of VMM start-up."""
    import logging  # noqa: PLC0415

    return logging.getLogger(__name__)

MAGIC_VALUE = 0x74726976  # "virt"
MMIO_VERSION = 2
VENDOR_ID = 0x554D4756  # "VGMU": ours, not a PCI vendor

# Register offsets (virtio 1.x §4.2.2).
REG_MAGIC = 0x000
REG_VERSION = 0x004
REG_DEVICE_ID = 0x008
REG_VENDOR_ID = 0x00C
REG_DEVICE_FEATURES = 0x010
REG_DEVICE_FEATURES_SEL = 0x014
REG_DRIVER_FEATURES = 0x020
REG_DRIVER_FEATURES_SEL = 0x024
REG_QUEUE_SEL = 0x030
REG_QUEUE_NUM_MAX = 0x034
REG_QUEUE_NUM = 0x038
REG_QUEUE_READY = 0x044
REG_QUEUE_NOTIFY = 0x050
REG_INTERRUPT_STATUS = 0x060
REG_INTERRUPT_ACK = 0x064
REG_STATUS = 0x070
REG_QUEUE_DESC_LOW = 0x080
REG_QUEUE_DESC_HIGH = 0x084
REG_QUEUE_DRIVER_LOW = 0x090
REG_QUEUE_DRIVER_HIGH = 0x094
REG_QUEUE_DEVICE_LOW = 0x0A0
REG_QUEUE_DEVICE_HIGH = 0x0A4
REG_SHM_SEL = 0x0AC
REG_SHM_LEN_LOW = 0x0B0
REG_SHM_LEN_HIGH = 0x0B4
REG_SHM_BASE_LOW = 0x0B8
REG_SHM_BASE_HIGH = 0x0BC
REG_CONFIG_GENERATION = 0x0FC
CONFIG_SPACE = 0x100

STATUS_ACKNOWLEDGE = 1
STATUS_DRIVER = 2
STATUS_DRIVER_OK = 4
STATUS_FEATURES_OK = 8
STATUS_DEVICE_NEEDS_RESET = 0x40
STATUS_FAILED = 0x80
#: Each status bit and the bit that must already be set for it (virtio 1.x §3.1.1).
STATUS_PREREQUISITES = (
    (STATUS_DRIVER, STATUS_ACKNOWLEDGE),
    (STATUS_FEATURES_OK, STATUS_DRIVER),
    (STATUS_DRIVER_OK, STATUS_FEATURES_OK),
)
STATUS_DRIVER_BITS = (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK
                      | STATUS_FAILED)

INT_USED_BUFFER = 1
INT_CONFIG_CHANGE = 2

VIRTIO_F_RING_EVENT_IDX = 1 << 29
VIRTIO_F_VERSION_1 = 1 << 32
TRANSPORT_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX

#: Failures logged per device; later ones are only counted (TransportStats.failures).
MAX_LOGGED_FAILURES = 8

_CONFIG_FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


@record
class TransportStats:
    bad_accesses: int = 0  # unaligned, wrong size, or unknown register
    ignored_writes: int = 0  # valid register, wrong moment (e.g. queue config while ready)
    notifies: int = 0
    interrupts: int = 0
    failures: int = 0  # guest violations that set DEVICE_NEEDS_RESET
    internal_errors: int = 0  # our bugs caught at the register boundary (should stay 0)
    last_error: str = ""


class VirtioMmioTransport:
    """One virtio-mmio window wrapping one device model."""

    def __init__(
        self, device: VirtioDevice, mem: GuestMemory, interrupt: Callable[[], None]
    ) -> None:
        self.device = device
        self.mem = mem
        self._interrupt = interrupt
        self.queues = [Queue(mem, n) for n in device.queue_max_sizes]
        self.stats = TransportStats()
        self._lock = threading.RLock()
        self._isr_lock = threading.Lock()
        self._isr = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self.status = 0
        self.broken = False
        self.driver_features = 0
        self._device_features_sel = 0
        self._driver_features_sel = 0
        self._queue_sel = 0
        self._shm_sel = 0
        self.config_generation = 0
        for q in self.queues:
            q.reset()
        with self._isr_lock:
            self._isr = 0

    @property
    def device_features(self) -> int:
        return self.device.features() | TRANSPORT_FEATURES

    @property
    def interrupt_status(self) -> int:
        return self._isr

    # --- Bus device interface ----------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        try:
            if offset >= CONFIG_SPACE:
                return self._read_config(offset - CONFIG_SPACE, size)
            if size != 4 or offset % 4:
                self.stats.bad_accesses += 1
                return 0
            if offset == REG_INTERRUPT_STATUS:
                return self._isr
            with self._lock:
                return self._read_register(offset)
        except Exception as e:  # a register read must never take the vCPU down
            self._note_internal_error("read", offset, e)
            return 0

    def write(self, offset: int, size: int, value: int) -> None:
        try:
            if offset >= CONFIG_SPACE:
                with self._lock:
                    self._write_config(offset - CONFIG_SPACE, size, value)
                return
            if size != 4 or offset % 4:
                self.stats.bad_accesses += 1
                return
            if offset == REG_INTERRUPT_ACK:
                with self._isr_lock:
                    self._isr &= ~value
                return
            if offset == REG_QUEUE_NOTIFY:
                self.notify(value & 0xFFFF)
                return
            with self._lock:
                self._write_register(offset, value & 0xFFFF_FFFF)
        except Exception as e:
            self._note_internal_error("write", offset, e)

    def _note_internal_error(self, what: str, offset: int, e: Exception) -> None:
        self.stats.internal_errors += 1
        self.stats.last_error = f"{what} at {offset:#x}: {e}"
        _log().exception("virtio-mmio %s at %#x failed", what, offset)

    # --- registers -----------------------------------------------------------------------------

    def _selected_queue(self) -> Queue | None:
        return self.queues[self._queue_sel] if self._queue_sel < len(self.queues) else None

    def _read_register(self, offset: int) -> int:
        q = self._selected_queue()
        if offset == REG_MAGIC:
            return MAGIC_VALUE
        if offset == REG_VERSION:
            return MMIO_VERSION
        if offset == REG_DEVICE_ID:
            return self.device.device_id
        if offset == REG_VENDOR_ID:
            return VENDOR_ID
        if offset == REG_DEVICE_FEATURES:
            sel = self._device_features_sel
            return (self.device_features >> (32 * sel)) & 0xFFFF_FFFF if sel < 2 else 0
        if offset == REG_QUEUE_NUM_MAX:
            return q.max_size if q else 0
        if offset == REG_QUEUE_READY:
            return int(q.ready) if q else 0
        if offset == REG_STATUS:
            return self.status | (STATUS_DEVICE_NEEDS_RESET if self.broken else 0)
        if offset == REG_CONFIG_GENERATION:
            return self.config_generation
        if offset in (REG_SHM_LEN_LOW, REG_SHM_LEN_HIGH, REG_SHM_BASE_LOW, REG_SHM_BASE_HIGH):
            return 0xFFFF_FFFF  # no shared memory regions (spec: length reads as all ones)
        if offset in (REG_QUEUE_NUM, REG_QUEUE_DESC_LOW, REG_QUEUE_DESC_HIGH,
                      REG_QUEUE_DRIVER_LOW, REG_QUEUE_DRIVER_HIGH, REG_QUEUE_DEVICE_LOW,
                      REG_QUEUE_DEVICE_HIGH):
            return self._read_queue_field(q, offset)
        self.stats.bad_accesses += 1
        return 0

    @staticmethod
    def _read_queue_field(q: Queue | None, offset: int) -> int:
        if q is None:
            return 0
        fields = {
            REG_QUEUE_NUM: q.size,
            REG_QUEUE_DESC_LOW: q.desc_addr & 0xFFFF_FFFF,
            REG_QUEUE_DESC_HIGH: q.desc_addr >> 32,
            REG_QUEUE_DRIVER_LOW: q.driver_addr & 0xFFFF_FFFF,
            REG_QUEUE_DRIVER_HIGH: q.driver_addr >> 32,
            REG_QUEUE_DEVICE_LOW: q.device_addr & 0xFFFF_FFFF,
            REG_QUEUE_DEVICE_HIGH: q.device_addr >> 32,
        }
        return fields[offset]

    def _write_register(self, offset: int, value: int) -> None:
        if offset == REG_DEVICE_FEATURES_SEL:
            self._device_features_sel = value
        elif offset == REG_DRIVER_FEATURES_SEL:
            self._driver_features_sel = value
        elif offset == REG_DRIVER_FEATURES:
            self._write_driver_features(value)
        elif offset == REG_QUEUE_SEL:
            self._queue_sel = value
        elif offset == REG_STATUS:
            self._write_status(value)
        elif offset == REG_SHM_SEL:
            self._shm_sel = value
        elif offset in (REG_QUEUE_NUM, REG_QUEUE_READY, REG_QUEUE_DESC_LOW, REG_QUEUE_DESC_HIGH,
                        REG_QUEUE_DRIVER_LOW, REG_QUEUE_DRIVER_HIGH, REG_QUEUE_DEVICE_LOW,
                        REG_QUEUE_DEVICE_HIGH):
            self._write_queue_field(offset, value)
        else:
            self.stats.bad_accesses += 1

    def _write_driver_features(self, value: int) -> None:
        sel = self._driver_features_sel
        if sel >= 2 or self.status & STATUS_FEATURES_OK:
            self.stats.ignored_writes += 1
            return
        mask = 0xFFFF_FFFF << (32 * sel)
        self.driver_features = (self.driver_features & ~mask) | (value << (32 * sel))

    def _write_queue_field(self, offset: int, value: int) -> None:
        q = self._selected_queue()
        if q is None or self.broken or self.status & STATUS_DRIVER_OK and offset != REG_QUEUE_READY:
            self.stats.ignored_writes += 1
            return
        if offset == REG_QUEUE_READY:
            if value & 1 and not q.ready:
                try:
                    q.activate(event_idx=bool(self.driver_features & VIRTIO_F_RING_EVENT_IDX))
                except QueueError as e:
                    self._fail(e)
            elif not value & 1:
                q.ready = False
            return
        if q.ready:
            self.stats.ignored_writes += 1
            return
        if offset == REG_QUEUE_NUM:
            q.size = value
        elif offset == REG_QUEUE_DESC_LOW:
            q.desc_addr = (q.desc_addr & ~0xFFFF_FFFF) | value
        elif offset == REG_QUEUE_DESC_HIGH:
            q.desc_addr = (q.desc_addr & 0xFFFF_FFFF) | (value << 32)
        elif offset == REG_QUEUE_DRIVER_LOW:
            q.driver_addr = (q.driver_addr & ~0xFFFF_FFFF) | value
        elif offset == REG_QUEUE_DRIVER_HIGH:
            q.driver_addr = (q.driver_addr & 0xFFFF_FFFF) | (value << 32)
        elif offset == REG_QUEUE_DEVICE_LOW:
            q.device_addr = (q.device_addr & ~0xFFFF_FFFF) | value
        elif offset == REG_QUEUE_DEVICE_HIGH:
            q.device_addr = (q.device_addr & 0xFFFF_FFFF) | (value << 32)

    def _status_allowed(self, value: int) -> bool:
        """The spec's state machine: only add bits, each after its prerequisite."""
        if value & ~STATUS_DRIVER_BITS or value & self.status != self.status:
            return False
        return all(not value & bit or value & need for bit, need in STATUS_PREREQUISITES)

    def _write_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        value &= ~STATUS_DEVICE_NEEDS_RESET
        if value & STATUS_FEATURES_OK and not self.status & STATUS_FEATURES_OK:
            offered = self.device_features
            if self.driver_features & ~offered or not self.driver_features & VIRTIO_F_VERSION_1:
                value &= ~(STATUS_FEATURES_OK | STATUS_DRIVER_OK)  # refused: reads back clear
        if not self._status_allowed(value):
            self.stats.ignored_writes += 1
            return
        activate = value & STATUS_DRIVER_OK and not self.status & STATUS_DRIVER_OK
        self.status = value
        if activate and not self.broken:
            self.device.activate(self.queues, self._used, self.driver_features)

    # --- config space ----------------------------------------------------------------------

    def _read_config(self, offset: int, size: int) -> int:
        fmt = _CONFIG_FORMATS.get(size)
        config = self.device.config()
        if fmt is None or offset + size > len(config):
            self.stats.bad_accesses += 1
            return 0
        return int(struct.unpack_from(fmt, config, offset)[0])

    def _write_config(self, offset: int, size: int, value: int) -> None:
        fmt = _CONFIG_FORMATS.get(size)
        if fmt is None or offset + size > len(self.device.config()):
            self.stats.bad_accesses += 1
            return
        self.device.write_config(offset, struct.pack(fmt, value & ((1 << (8 * size)) - 1)))

    # --- events ----------------------------------------------------------------------------

    def notify(self, queue_index: int) -> None:
        """The driver kicked a queue (QueueNotify write or its ioeventfd fired)."""
        self.stats.notifies += 1
        self.run(lambda: self.device.process(queue_index))

    def run(self, handler: Callable[[], None], drain: bool = False) -> None:
        """Run a device event handler under the lock; guest violations break only this device.

        A broken device is deactivated (it touches no guest memory), but its host-fd handlers
        (`drain`) still run so they empty their fds: skipped, poll would report them forever.
        """
        with self._lock:
            if self.broken and not drain:
                return
            try:
                handler()
            except (QueueError, GuestMemoryError) as e:
                self._fail(e)
            except Exception as e:  # a device-model bug: the device breaks, never the VMM
                self.stats.internal_errors += 1
                _log().debug("virtio device %d failed", self.device.device_id, exc_info=True)
                self._fail(f"internal error: {type(e).__name__}: {e}")

    def fds(self) -> list[FdHandler]:
        """The device's host fds, with handlers wrapped like notify()."""
        return [(fd, self._wrap(fn)) for fd, fn in self.device.fds()]

    def _wrap(self, fn: Callable[[], None]) -> Callable[[], None]:
        return lambda: self.run(fn, drain=True)

    def _used(self, queue_index: int) -> None:
        q = self.queues[queue_index]
        if q.needs_interrupt():
            self._raise(INT_USED_BUFFER)

    def _raise(self, bits: int) -> None:
        with self._isr_lock:
            self._isr |= bits
        self.stats.interrupts += 1
        self._interrupt()

    def _fail(self, error: Exception | str) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(error)
        if self.stats.failures <= MAX_LOGGED_FAILURES:  # a guest looping reset/fail must not flood
            _log().warning("virtio device %d needs reset: %s", self.device.device_id, error)
        self.broken = True
        self.device.deactivate()
        self.config_generation = (self.config_generation + 1) & 0xFFFF_FFFF
        if self.status & STATUS_DRIVER_OK:
            self._raise(INT_CONFIG_CHANGE)

    def reset(self) -> None:
        """Driver wrote 0 to Status: forget all negotiation and queue state."""
        with self._lock:
            self.device.deactivate()
            self._reset_state()

    def close(self) -> None:
        """Release the device's host resources and our views of guest RAM (so it can be unmapped)."""
        with self._lock:
            self.device.deactivate()
            for q in self.queues:
                q.reset()
            with contextlib.suppress(Exception):
                self.device.close()
