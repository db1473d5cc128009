"""ACPI reduced-hardware power management: sleep/reset ports and the Generic Event Device.

Guest-visible contract (the FADT and DSDT built by vmgui.vmm.acpi describe exactly this):

- Port layout.ACPI_SLEEP_CONTROL (8 bit, FADT SLEEP_CONTROL_REG): writing SLP_EN (bit 5) with
  SLP_TYP (bits 2-4) = S5_SLP_TYP, the value the DSDT's _S5_ package gives, calls on_poweroff().
  Other sleep types are ignored (only S5 is advertised). Reads return 0.
- Port layout.ACPI_SLEEP_STATUS (8 bit, FADT SLEEP_STATUS_REG): reads 0 (the guest never wakes
  from sleep); writes (WAK_STS write-one-to-clear) are accepted and ignored.
- Port layout.ACPI_RESET_PORT (8 bit, FADT RESET_REG): writing layout.ACPI_RESET_VALUE calls
  on_reset(); other values are ignored.
- MMIO layout.ACPI_GED_BASE, 32-bit event register at offset 0 (the GED's _EVT reads it):
  a read returns the pending event bits (GED_EVENT_POWER_BUTTON = bit 0) and clears them; writes
  are ignored; other offsets read 0. The GED interrupt (layout.ACPI_GED_IRQ, declared level /
  active-high) is raised with irq(True) while any event is pending and lowered with irq(False)
  when a read clears them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vmgui.vmm import layout

SLP_EN = 1 << 5
SLP_TYP_SHIFT = 2
SLP_TYP_MASK = 0x7 << SLP_TYP_SHIFT
#: SLP_TYP for S5 (soft off); the DSDT's _S5_ package announces this value.
S5_SLP_TYP = 5

SLEEP_CONTROL_OFFSET = layout.ACPI_SLEEP_CONTROL - layout.ACPI_SLEEP_CONTROL
SLEEP_STATUS_OFFSET = layout.ACPI_SLEEP_STATUS - layout.ACPI_SLEEP_CONTROL
RESET_OFFSET = layout.ACPI_RESET_PORT - layout.ACPI_SLEEP_CONTROL
#: Bytes of port space AcpiPmPorts covers, starting at layout.ACPI_SLEEP_CONTROL.
PM_PORTS_SIZE = RESET_OFFSET + 1

GED_EVENT_POWER_BUTTON = 1 << 0
GED_EVENT_OFFSET = 0
GED_EVENT_WIDTH = 4


class AcpiPmPorts:
    """Sleep control, sleep status and reset registers, as one device on the port bus."""

    def __init__(self, on_poweroff: Callable[[], None], on_reset: Callable[[], None]) -> None:
        self._on_poweroff = on_poweroff
        self._on_reset = on_reset

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        if offset == SLEEP_CONTROL_OFFSET:
            if value & SLP_EN and (value & SLP_TYP_MASK) >> SLP_TYP_SHIFT == S5_SLP_TYP:
                self._on_poweroff()
        elif offset == RESET_OFFSET and value == layout.ACPI_RESET_VALUE:
            self._on_reset()


class GenericEventDevice:
    """The GED event register: latched event bits, read-to-clear, level interrupt while pending."""

    def __init__(self, irq: Callable[[bool], None]) -> None:
        self._irq = irq
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    def press_power_button(self) -> None:
        """Latch the power-button event and raise the GED interrupt (the guest decides)."""
        with self._lock:
            self._pending |= GED_EVENT_POWER_BUTTON
        self._irq(True)

    def reset(self) -> None:
        """Forget pending events (machine reset)."""
        with self._lock:
            had = self._pending
            self._pending = 0
        if had:
            self._irq(False)

    def read(self, offset: int, size: int) -> int:
        if not GED_EVENT_OFFSET <= offset < GED_EVENT_OFFSET + GED_EVENT_WIDTH:
            return 0
        with self._lock:
            events, self._pending = self._pending, 0
        if events:
            self._irq(False)
        shift = 8 * (offset - GED_EVENT_OFFSET)
        return (events >> shift) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        return None
