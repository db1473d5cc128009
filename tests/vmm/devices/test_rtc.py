"""The MC146818 RTC/CMOS model with an injected clock: time, time-setting, flags, IRQ, CMOS RAM."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmgui.vmm.devices import rtc as r
from vmgui.vmm.devices.rtc import Rtc

GIB = 1 << 30
MIB = 1 << 20
# Thursday 2024-02-29 13:45:07.25 UTC
LEAP_DAY = calendar.timegm((2024, 2, 29, 13, 45, 7)) + 0.25


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Cmos:
    """An Rtc on a fake clock, with the index/data port helpers a guest uses."""

    def __init__(self, t: float = LEAP_DAY, memory: int = 256 * MIB, cpus: int = 1) -> None:
        self.clock = Clock(t)
        self.irqs: list[bool] = []
        self.dev = Rtc(memory, self.irqs.append, cpus=cpus, clock=self.clock)

    def rd(self, reg: int) -> int:
        self.dev.write(r.INDEX, 1, reg)
        return self.dev.read(r.DATA, 1)

    def wr(self, reg: int, value: int) -> None:
        self.dev.write(r.INDEX, 1, reg)
        self.dev.write(r.DATA, 1, value)

    def time_regs(self) -> tuple[int, ...]:
        return tuple(self.rd(reg) for reg in r.TIME_REGISTERS)


@pytest.fixture
def cmos() -> Cmos:
    return Cmos()


def test_reads_host_time_in_bcd_24h(cmos: Cmos) -> None:
    # sec, min, hour, day of week (Thursday = 5), day, month, year, century
    assert cmos.time_regs() == (0x07, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20)
    assert cmos.rd(r.REG_B) == r.B_24H


def test_binary_and_12_hour_modes(cmos: Cmos) -> None:
    cmos.wr(r.REG_B, r.B_24H | r.B_DM_BINARY)
    assert cmos.time_regs() == (7, 45, 13, 5, 29, 2, 24, 20)
    cmos.wr(r.REG_B, r.B_DM_BINARY)
    assert cmos.rd(r.REG_HOURS) == r.HOUR_PM | 1
    cmos.wr(r.REG_B, 0)
    assert cmos.rd(r.REG_HOURS) == r.HOUR_PM | 0x01


@pytest.mark.parametrize(
    ("hour", "encoded"), [(0, 0x12), (1, 0x01), (11, 0x11), (12, 0x92), (23, 0x91)]
)
def test_12_hour_encoding(hour: int, encoded: int) -> None:
    cmos = Cmos(calendar.timegm((2023, 7, 1, hour, 0, 0)))
    cmos.wr(r.REG_B, 0)
    assert cmos.rd(r.REG_HOURS) == encoded


def test_time_follows_the_clock(cmos: Cmos) -> None:
    cmos.clock.t += 61
    assert cmos.rd(r.REG_SECONDS) == 0x08 and cmos.rd(r.REG_MINUTES) == 0x46
    cmos.clock.t += 11 * 3600  # into Friday, March 1st
    assert cmos.time_regs()[3:6] == (0x06, 0x01, 0x03)


def test_guest_sets_time_with_set_bit_like_linux(cmos: Cmos) -> None:
    cmos.wr(r.REG_B, r.B_24H | r.B_SET)
    for reg, value in [
        (r.REG_SECONDS, 0x58),
        (r.REG_MINUTES, 0x59),
        (r.REG_HOURS, 0x23),
        (r.REG_DAY, 0x31),
        (r.REG_MONTH, 0x12),
        (r.REG_YEAR, 0x99),
        (r.REG_CENTURY, 0x19),
    ]:
        cmos.wr(reg, value)
    cmos.clock.t += 100  # frozen while SET is on, and reads return what was written
    assert cmos.time_regs() == (0x58, 0x59, 0x23, 0x05, 0x31, 0x12, 0x99, 0x19)
    assert not cmos.rd(r.REG_A) & r.A_UIP
    cmos.wr(r.REG_B, r.B_24H)
    assert cmos.time_regs() == (0x58, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19)  # Friday
    cmos.clock.t += 3
    assert cmos.time_regs() == (0x01, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20)  # Saturday
    assert cmos.dev.guest_time() == pytest.approx(calendar.timegm((2000, 1, 1, 0, 0, 1)))


def test_single_register_write_without_set_bit(cmos: Cmos) -> None:
    cmos.wr(r.REG_MINUTES, 0x00)
    assert cmos.time_regs()[:3] == (0x07, 0x00, 0x13)
    cmos.wr(r.REG_B, r.B_DM_BINARY)  # 12h binary: 8 PM
    cmos.wr(r.REG_HOURS, r.HOUR_PM | 8)
    cmos.wr(r.REG_B, r.B_24H | r.B_DM_BINARY)
    assert cmos.rd(r.REG_HOURS) == 20
    cmos.wr(r.REG_DAY_OF_WEEK, 1)  # not kept: it follows the date
    assert cmos.rd(r.REG_DAY_OF_WEEK) == 5


def test_out_of_range_values_are_clamped(cmos: Cmos) -> None:
    cmos.wr(r.REG_B, r.B_24H | r.B_SET)
    cmos.wr(r.REG_SECONDS, 0x99)
    cmos.wr(r.REG_MINUTES, 0xFF)
    cmos.wr(r.REG_HOURS, 0x42)
    cmos.wr(r.REG_DAY, 0x30)  # February 30th rolls into March
    cmos.wr(r.REG_MONTH, 0x02)
    cmos.wr(r.REG_YEAR, 0x23)
    cmos.wr(r.REG_B, r.B_24H)
    assert cmos.time_regs() == (0x59, 0x59, 0x23, 0x05, 0x02, 0x03, 0x23, 0x20)
    cmos.wr(r.REG_MONTH, 0x00)
    assert cmos.rd(r.REG_MONTH) == 0x01


def test_register_a_uip_window(cmos: Cmos) -> None:
    assert cmos.rd(r.REG_A) == r.DEFAULT_A
    cmos.clock.t = int(cmos.clock.t) + 1 - r.UIP_HOLD_SECONDS / 2
    assert cmos.rd(r.REG_A) == r.DEFAULT_A | r.A_UIP
    cmos.wr(r.REG_B, r.B_24H | r.B_SET)
    assert cmos.rd(r.REG_A) == r.DEFAULT_A  # no updates while SET
    cmos.wr(r.REG_B, r.B_24H)
    cmos.clock.t = int(cmos.clock.t) + 0.5
    cmos.wr(r.REG_A, 0xFF)
    assert cmos.rd(r.REG_A) == 0x7F  # UIP is read-only


def test_register_c_and_d(cmos: Cmos) -> None:
    assert cmos.rd(r.REG_D) == r.D_VRT
    cmos.wr(r.REG_D, 0)
    cmos.wr(r.REG_C, 0xFF)
    assert cmos.rd(r.REG_D) == r.D_VRT
    cmos.wr(r.REG_A, 0x20)  # no periodic rate
    assert cmos.rd(r.REG_C) == 0
    cmos.clock.t += 1
    assert cmos.rd(r.REG_C) == r.C_UF  # flag without IRQF: UIE is off
    assert cmos.rd(r.REG_C) == 0  # read clears
    assert cmos.irqs == []


def test_update_ended_interrupt(cmos: Cmos) -> None:
    cmos.wr(r.REG_A, 0x20)
    assert cmos.dev.tick() is None  # nothing enabled
    cmos.wr(r.REG_B, r.B_24H | r.B_UIE)
    deadline = cmos.dev.tick()
    assert deadline is not None and deadline == pytest.approx(int(LEAP_DAY) + 1)
    assert cmos.irqs == []
    cmos.clock.t = deadline
    assert cmos.dev.tick() == pytest.approx(deadline + 1)
    assert cmos.irqs == [True]
    assert cmos.rd(r.REG_C) == r.C_IRQF | r.C_UF
    assert cmos.irqs == [True, False]


def test_set_bit_clears_uie_and_stops_updates(cmos: Cmos) -> None:
    cmos.wr(r.REG_A, 0x20)  # no periodic flag either
    cmos.wr(r.REG_B, r.B_24H | r.B_UIE | r.B_SET)
    assert cmos.rd(r.REG_B) == r.B_24H | r.B_SET
    cmos.clock.t += 5
    assert cmos.rd(r.REG_C) == 0  # no UF while SET
    assert cmos.dev.tick() is None


def test_periodic_interrupt(cmos: Cmos) -> None:
    cmos.wr(r.REG_A, 0x26)  # 1024 Hz
    cmos.wr(r.REG_B, r.B_24H | r.B_PIE)
    deadline = cmos.dev.tick()
    assert deadline is not None and 0 < deadline - cmos.clock.t <= 1 / 1024
    cmos.clock.t = deadline
    cmos.dev.tick()
    assert cmos.irqs == [True]
    assert cmos.rd(r.REG_C) & (r.C_IRQF | r.C_PF) == r.C_IRQF | r.C_PF
    assert cmos.irqs == [True, False]


@pytest.mark.parametrize(("rate", "hz"), [(1, 256), (2, 128), (3, 8192), (6, 1024), (15, 2)])
def test_periodic_rates(rate: int, hz: int) -> None:
    cmos = Cmos(1000.0)
    cmos.wr(r.REG_A, 0x20 | rate)
    cmos.wr(r.REG_B, r.B_24H | r.B_PIE)
    first = cmos.dev.tick()
    assert first is not None
    cmos.clock.t = first
    assert cmos.dev.tick() == pytest.approx(first + 1 / hz)


def test_alarm_interrupt(cmos: Cmos) -> None:
    cmos.wr(r.REG_A, 0x20)
    cmos.wr(r.REG_SECONDS_ALARM, 0x09)
    cmos.wr(r.REG_MINUTES_ALARM, 0x45)
    cmos.wr(r.REG_HOURS_ALARM, r.ALARM_DONT_CARE)
    cmos.wr(r.REG_B, r.B_24H | r.B_AIE)
    cmos.clock.t += 1  # 13:45:08
    cmos.dev.tick()
    assert cmos.irqs == []
    cmos.clock.t += 1  # 13:45:09
    cmos.dev.tick()
    assert cmos.irqs == [True]
    assert cmos.rd(r.REG_C) == r.C_IRQF | r.C_AF | r.C_UF


def test_index_port_and_nmi_bit(cmos: Cmos) -> None:
    cmos.dev.write(r.INDEX, 1, r.INDEX_NMI_DISABLE | r.REG_D)
    assert cmos.dev.nmi_disabled
    assert cmos.dev.read(r.DATA, 1) == r.D_VRT
    assert cmos.dev.read(r.INDEX, 1) == 0xFF
    cmos.dev.write(r.INDEX, 1, r.REG_D)
    assert not cmos.dev.nmi_disabled


def test_cmos_ram_is_storage(cmos: Cmos) -> None:
    for reg in (0x0E, 0x0F, 0x40, 0x7F):
        cmos.wr(reg, 0xA5 ^ reg)
        assert cmos.rd(reg) == 0xA5 ^ reg
    assert cmos.dev.read(2, 1) == 0xFF  # past the two ports


def seabios_ram_sizes(cmos: Cmos) -> tuple[int, int]:
    """What SeaBIOS's qemu_preinit() computes from the CMOS memory fields."""
    rs = (cmos.rd(0x34) << 16) | (cmos.rd(0x35) << 24)
    if rs:
        rs += 16 * MIB
    else:
        rs = ((cmos.rd(0x30) << 10) | (cmos.rd(0x31) << 18)) + MIB
    high = (cmos.rd(0x5B) << 16) | (cmos.rd(0x5C) << 24) | (cmos.rd(0x5D) << 32)
    return rs, high


@pytest.mark.parametrize(
    ("memory", "low", "high"),
    [
        (256 * MIB, 256 * MIB, 0),
        (8 * MIB, 8 * MIB, 0),
        (3 * GIB, 3 * GIB, 0),
        (8 * GIB, 3 * GIB, 5 * GIB),
    ],
)
def test_memory_size_fields_as_seabios_reads_them(memory: int, low: int, high: int) -> None:
    cmos = Cmos(memory=memory, cpus=2)
    assert seabios_ram_sizes(cmos) == (low, high)
    assert cmos.rd(0x15) | cmos.rd(0x16) << 8 == 640
    ext = min((low - MIB) // 1024, 0xFFFF)
    assert cmos.rd(0x17) | cmos.rd(0x18) << 8 == ext
    assert cmos.rd(0x5F) == 1
    assert cmos.rd(r.CMOS_EQUIPMENT) == r.EQUIPMENT_FPU
    checksum = sum(cmos.rd(reg) for reg in range(0x10, 0x2E))
    assert cmos.rd(0x2E) << 8 | cmos.rd(0x2F) == checksum


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="memory size"):
        Rtc(-1)
    with pytest.raises(ValueError, match="vCPU count"):
        Rtc(MIB, cpus=0)


def test_reset_keeps_time_and_disables_interrupts(cmos: Cmos) -> None:
    cmos.wr(r.REG_MINUTES, 0x10)
    cmos.wr(r.REG_B, r.B_24H | r.B_UIE)
    cmos.clock.t += 1
    cmos.dev.tick()
    assert cmos.dev.irq_level
    cmos.dev.reset()
    assert not cmos.dev.irq_level and cmos.irqs == [True, False]
    assert cmos.rd(r.REG_B) == r.B_24H
    assert cmos.rd(r.REG_MINUTES) == 0x10


def test_default_clock_is_the_host_clock() -> None:
    import time

    dev = Rtc(64 * MIB)
    assert abs(dev.guest_time() - time.time()) < 5


ops = st.lists(
    st.one_of(
        st.tuples(st.just("w"), st.integers(0, 2), st.integers(0, 0xFF)),
        st.tuples(st.just("r"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("clock"), st.just(0), st.integers(-(10**12), 10**12)),
        st.tuples(st.just("tick"), st.just(0), st.just(0)),
    ),
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.floats(-1e11, 1e11))
def test_random_sequences_keep_invariants(sequence: list[tuple[str, int, int]], t0: float) -> None:
    cmos = Cmos(t0)
    for kind, offset, value in sequence:
        if kind == "w":
            cmos.dev.write(offset, 1, value)
        elif kind == "r":
            assert 0 <= cmos.dev.read(offset, 1) <= 0xFF
        elif kind == "clock":
            cmos.clock.t += value / 1000
        else:
            deadline = cmos.dev.tick()
            assert deadline is None or deadline > cmos.clock.t - 1
        assert r._MIN_TIME <= cmos.dev.guest_time() <= r._MAX_TIME
        assert all(a != b for a, b in zip(cmos.irqs, cmos.irqs[1:], strict=False))
        assert (cmos.irqs[-1] if cmos.irqs else False) == cmos.dev.irq_level


def test_time_range_constants_match_datetime() -> None:
    """rtc.py spells its range as day ordinals so importing it does not import datetime."""
    import datetime

    epoch = datetime.datetime(1970, 1, 1)
    assert (datetime.datetime(r.MIN_YEAR, 1, 1) - epoch).total_seconds() == r._MIN_TIME
    last = datetime.datetime(r.MAX_YEAR, 12, 31, 23, 59, 59)
    assert (last - epoch).total_seconds() == r._MAX_TIME
