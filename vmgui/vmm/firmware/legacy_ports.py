"""Legacy ports the firmware relies on: the debug console (0x402) and the reset control (0xCF9).

Guest-visible contract:
- `DEBUG_PORT` (QEMU's isa-debugcon, as SeaBIOS probes it): a read returns `DEBUG_PORT_PRESENT`
  (0xE9), which tells SeaBIOS the port exists; every byte written is one character of its debug
  log. Lines go to the `line` callback (the machine logs them), cut at `MAX_LINE`.
- `RESET_CONTROL_PORT` (the chipset's reset control register): writing a value with
  `RESET_CPU` (bit 2) set resets the machine; reads return the last value written. SeaBIOS
  resets this way (0x02 then 0x06) after "No bootable device" or Ctrl-Alt-Del, and follows it
  with int3 to triple-fault, an instruction a host that emulates ring 0 cannot run.

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


RESET_CONTROL_PORT = 0xCF9
RESET_CPU = 0x04
RESET_CONTROL_BITS = 0x0E  # bit 1 hard reset, bit 2 reset CPU, bit 3 full reset


class ResetControl:
    """Port 0xCF9; `on_reset()` runs on the vCPU thread inside the write: only request there."""

    PORT_COUNT = 1

    def __init__(self, on_reset: Callable[[], None]) -> None:
        self._on_reset = on_reset
        self._value = 0

    def read(self, offset: int, size: int) -> int:
        return self._value if size == 1 else (1 << (8 * size)) - 1

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 1:
            return
        self._value = value & RESET_CONTROL_BITS
        if value & RESET_CPU:
            self._on_reset()
