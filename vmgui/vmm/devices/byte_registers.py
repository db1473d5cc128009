"""Base for legacy port devices whose registers are all 8 bits wide (UART, i8042, RTC).

A wider access (`inw`/`inl`) to such a device is split into consecutive byte cycles, as the
ISA bus does: a 16-bit read at offset 7 of an 8-port UART reads register 7 and then one byte
past the device, which reads as 0xFF (writes there are dropped). Every access and every
host-side call runs under one re-entrant lock per device, so vCPU threads and the VMM's
main loop can drive the same device; callbacks run with that lock held (in order, so an IRQ
line can never be left at a stale level) and may call back into the device.
"""

from __future__ import annotations

import threading

#: Widest access split into byte cycles; KVM reports at most 4 for port I/O, 8 for MMIO.
MAX_ACCESS_SIZE = 8


class ByteRegisters:
    """Subclasses implement `_read_byte`/`_write_byte` for offsets below `PORT_COUNT`."""

    #: Number of consecutive ports the device decodes; register it on the bus with this size.
    PORT_COUNT = 1

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def read(self, offset: int, size: int) -> int:
        if size == 1 and 0 <= offset < self.PORT_COUNT:  # the common case, kept cheap
            with self._lock:
                return self._read_byte(offset) & 0xFF
        value = 0
        with self._lock:
            for i in range(min(max(size, 0), MAX_ACCESS_SIZE)):
                port = offset + i
                byte = self._read_byte(port) & 0xFF if 0 <= port < self.PORT_COUNT else 0xFF
                value |= byte << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 1 and 0 <= offset < self.PORT_COUNT:
            with self._lock:
                self._write_byte(offset, value & 0xFF)
            return
        with self._lock:
            for i in range(min(max(size, 0), MAX_ACCESS_SIZE)):
                port = offset + i
                if 0 <= port < self.PORT_COUNT:
                    self._write_byte(port, (value >> (8 * i)) & 0xFF)

    def _read_byte(self, offset: int) -> int:
        raise NotImplementedError

    def _write_byte(self, offset: int, value: int) -> None:
        raise NotImplementedError
