"""The firmware's debug console on port 0x402 (QEMU's isa-debugcon, as SeaBIOS probes it).

Guest-visible contract: a read of `DEBUG_PORT` returns `DEBUG_PORT_PRESENT` (0xE9), which tells
SeaBIOS the port exists; every byte written to it is one character of its debug log. Lines go to
the `line` callback (the machine logs them); a line longer than `MAX_LINE` is cut there.

The other legacy ports SeaBIOS and GRUB touch need no model here: port 0x61 (PIT channel 2
output, bit 5, for the PIT calibration fallback) is answered by KVM's in-kernel PIT, and 0x92
(system control port A, read ~10^5 times per GRUB screen) like every unassigned port reads all
ones and ignores writes (vcpu.py), which is what SeaBIOS and GRUB expect of this machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

DEBUG_PORT = 0x402
DEBUG_PORT_PRESENT = 0xE9
MAX_LINE = 512


class DebugPort:
    """Collects the firmware's debug output into lines."""

    PORT_COUNT = 1

    def __init__(self, line: Callable[[str], None]) -> None:
        self._line = line
        self._buf = bytearray()
        self._lock = threading.Lock()

    def read(self, offset: int, size: int) -> int:
        return DEBUG_PORT_PRESENT if size == 1 else (1 << (8 * size)) - 1

    def write(self, offset: int, size: int, value: int) -> None:
        text = None
        with self._lock:
            for i in range(size):
                b = (value >> (8 * i)) & 0xFF
                if b == 0x0A or len(self._buf) >= MAX_LINE:
                    text = self._buf.decode("latin-1").rstrip("\r")
                    self._buf.clear()
                    if b != 0x0A:
                        self._buf.append(b)
                else:
                    self._buf.append(b)
        if text is not None:
            self._line(text)
