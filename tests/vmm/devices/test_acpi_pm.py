"""ACPI power-management ports and the GED register, driven through real Buses like a vCPU."""

from __future__ import annotations

import pytest

from vmgui.vmm import layout
from vmgui.vmm.devices.acpi_pm import (
    GED_EVENT_POWER_BUTTON,
    PM_PORTS_SIZE,
    S5_SLP_TYP,
    SLP_EN,
    SLP_TYP_SHIFT,
    AcpiPmPorts,
    GenericEventDevice,
)
from vmgui.vmm.devices.bus import Bus


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.levels: list[bool] = []

    def poweroff(self) -> None:
        self.events.append("poweroff")

    def reset(self) -> None:
        self.events.append("reset")

    def irq(self, level: bool) -> None:
        self.levels.append(level)


@pytest.fixture
def machine() -> tuple[Bus, Bus, Recorder, GenericEventDevice]:
    rec = Recorder()
    pio, mmio = Bus("pio"), Bus("mmio")
    pio.register(layout.ACPI_SLEEP_CONTROL, PM_PORTS_SIZE, AcpiPmPorts(rec.poweroff, rec.reset))
    ged = GenericEventDevice(rec.irq)
    mmio.register(layout.ACPI_GED_BASE, layout.ACPI_GED_SIZE, ged)
    return pio, mmio, rec, ged


def test_s5_sleep_powers_off(machine: tuple) -> None:
    pio, _mmio, rec, _ged = machine
    pio.write(layout.ACPI_SLEEP_CONTROL, 1, SLP_EN | (S5_SLP_TYP << SLP_TYP_SHIFT))
    assert rec.events == ["poweroff"]


@pytest.mark.parametrize(
    "value",
    [
        S5_SLP_TYP << SLP_TYP_SHIFT,  # SLP_TYP without SLP_EN
        SLP_EN | (3 << SLP_TYP_SHIFT),  # S3: not offered, ignored
        SLP_EN,
        0xFF & ~SLP_EN,
    ],
)
def test_other_sleep_writes_do_nothing(machine: tuple, value: int) -> None:
    pio, _mmio, rec, _ged = machine
    pio.write(layout.ACPI_SLEEP_CONTROL, 1, value)
    pio.write(layout.ACPI_SLEEP_STATUS, 1, 0x80)  # WAK_STS write-one-to-clear
    assert rec.events == []
    assert pio.read(layout.ACPI_SLEEP_STATUS, 1) == 0
    assert pio.read(layout.ACPI_SLEEP_CONTROL, 1) == 0


def test_reset_register(machine: tuple) -> None:
    pio, _mmio, rec, _ged = machine
    pio.write(layout.ACPI_RESET_PORT, 1, 0x06)
    assert rec.events == []
    pio.write(layout.ACPI_RESET_PORT, 1, layout.ACPI_RESET_VALUE)
    assert rec.events == ["reset"]


def test_power_button_latches_raises_and_read_clears(machine: tuple) -> None:
    _pio, mmio, rec, ged = machine
    assert mmio.read(layout.ACPI_GED_BASE, 4) == 0 and rec.levels == []
    ged.press_power_button()
    ged.press_power_button()  # a second press before the guest looked: still one event bit
    assert rec.levels == [True, True]
    assert mmio.read(layout.ACPI_GED_BASE, 4) == GED_EVENT_POWER_BUTTON
    assert rec.levels[-1] is False
    assert mmio.read(layout.ACPI_GED_BASE, 4) == 0  # read cleared it
    assert rec.levels.count(False) == 1  # nothing pending: no further edge
    mmio.write(layout.ACPI_GED_BASE, 4, 0xFFFFFFFF)  # writes are ignored
    assert ged.pending == 0


def test_ged_other_offsets_and_reset(machine: tuple) -> None:
    _pio, mmio, rec, ged = machine
    ged.press_power_button()
    assert mmio.read(layout.ACPI_GED_BASE + 8, 4) == 0
    assert ged.pending == GED_EVENT_POWER_BUTTON  # reading elsewhere does not clear
    ged.reset()
    assert ged.pending == 0 and rec.levels == [True, False]
