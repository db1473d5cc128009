"""MC146818 CMOS real-time clock with 128 bytes of CMOS RAM (ports 0x70/0x71, IRQ 8).

Guest-visible contract (`Rtc.PORT_COUNT` ports from layout.RTC_INDEX):

- Port 0x70 (write): bits 0-6 select the register, bit 7 disables NMI (stored, see
  `nmi_disabled`; reads of 0x70 return 0xFF). Port 0x71 reads/writes the selected register.
- 0x00/0x02/0x04 seconds/minutes/hours, 0x06 day of week (1 = Sunday), 0x07-0x09 day/month/
  year (two digits), 0x32 century: the host clock (UTC) plus an offset. Encoded BCD or binary
  and 12h (bit 7 = PM) or 24h as register B says. Writing a time register sets the offset, so
  guest time-setting survives (within this VM): with B.SET the writes are latched and applied
  when SET is cleared; without it each write applies at once. Out-of-range values are clamped
  (month 1-12, hours 0-23, ...), days past the month's end roll over, years stay in 1-9999.
  The day of week always follows the date (writes to it are not kept).
- 0x01/0x03/0x05 alarm seconds/minutes/hours (0xC0-0xFF = don't care).
- Register A: bits 0-6 stored (divider, periodic rate); bit 7 UIP is set during the last
  244 us of each second (as QEMU does), never while B.SET is set. The divider bits do not
  stop the clock.
- Register B: SET, PIE, AIE, UIE, SQWE (stored), DM (1 = binary), 24/12, DSE (stored, no DST
  logic). Setting SET clears UIE, as on the real part.
- Register C (read-only, read clears): IRQF, PF (periodic), AF (alarm), UF (update ended).
  Register D (read-only): 0x80, valid RAM and time.
- 0x0E-0x7F CMOS RAM, filled at construction like a PC BIOS setup would be: base memory
  (0x15-0x16, KiB), extended memory 1M-64M (0x17-0x18 and 0x30-0x31, KiB), memory 16M-4G
  (0x34-0x35, 64 KiB units), memory above 4 GiB (0x5B-0x5D, 64 KiB units), vCPU count - 1
  (0x5F), equipment byte 0x14 (FPU), and the standard checksum of 0x10-0x2D at 0x2E-0x2F.
  SeaBIOS reads these. The guest may overwrite any of them.
- Interrupts: flags are brought up to date on every register access and on `tick()`; the
  IRQ output (`irq(level)`) follows IRQF. A VMM that wants interrupts without guest polling
  calls `tick()` at the host-clock time it returns (None: no enabled interrupt source).
  The alarm is compared at the second `tick()` or an access observes, not for skipped ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from vmgui.vmm.devices.byte_registers import ByteRegisters
from vmgui.vmm.memory import MMIO_HOLE_START

INDEX = 0
DATA = 1
INDEX_MASK = 0x7F
INDEX_NMI_DISABLE = 0x80
CMOS_SIZE = 0x80

REG_SECONDS = 0x00
REG_SECONDS_ALARM = 0x01
REG_MINUTES = 0x02
REG_MINUTES_ALARM = 0x03
REG_HOURS = 0x04
REG_HOURS_ALARM = 0x05
REG_DAY_OF_WEEK = 0x06
REG_DAY = 0x07
REG_MONTH = 0x08
REG_YEAR = 0x09
REG_A = 0x0A
REG_B = 0x0B
REG_C = 0x0C
REG_D = 0x0D
REG_CENTURY = 0x32
TIME_REGISTERS = (
    REG_SECONDS,
    REG_MINUTES,
    REG_HOURS,
    REG_DAY_OF_WEEK,
    REG_DAY,
    REG_MONTH,
    REG_YEAR,
    REG_CENTURY,
)

A_UIP = 0x80
A_RATE_MASK = 0x0F
DEFAULT_A = 0x26  # 32.768 kHz divider, 1024 Hz periodic rate

B_SET = 0x80
B_PIE = 0x40
B_AIE = 0x20
B_UIE = 0x10
B_SQWE = 0x08
B_DM_BINARY = 0x04
B_24H = 0x02
B_DSE = 0x01
DEFAULT_B = B_24H
#: Bits a machine reset clears in register B (the RESET pin).
B_CLEARED_BY_RESET = B_PIE | B_AIE | B_UIE | B_SQWE

C_IRQF = 0x80
C_PF = 0x40
C_AF = 0x20
C_UF = 0x10

D_VRT = 0x80

HOUR_PM = 0x80
ALARM_DONT_CARE = 0xC0
#: UIP is raised this long before each second's update (8 cycles of the 32.768 kHz clock).
UIP_HOLD_SECONDS = 8 / 32768
OSCILLATOR_HZ = 32768

# CMOS RAM fields a PC BIOS reads.
CMOS_EQUIPMENT = 0x14
EQUIPMENT_FPU = 0x02
CMOS_BASE_MEMORY = 0x15  # and 0x16: KiB below 640K
CMOS_EXT_MEMORY = 0x17  # and 0x18: KiB from 1 MiB (capped 64 MiB), copied at 0x30-0x31
CMOS_EXT_MEMORY_COPY = 0x30
CMOS_CHECKSUM = 0x2E  # big-endian sum of 0x10-0x2D
CHECKSUM_FIRST = 0x10
CHECKSUM_LAST = 0x2D
CMOS_MEMORY_ABOVE_16M = 0x34  # and 0x35: 64 KiB units, 16 MiB up to 4 GiB
CMOS_MEMORY_ABOVE_4G = 0x5B  # 0x5B-0x5D: 64 KiB units
CMOS_CPU_COUNT_MINUS_1 = 0x5F
BASE_MEMORY_KIB = 640
MAX_CPUS = 256

KIB = 1024
MIB = 1024 * KIB
#: Guest time is kept inside the range the registers (century + year) can express.
MIN_YEAR = 1
MAX_YEAR = 9999
# The same range in seconds since the Unix epoch, from day ordinals rather than datetime
# arithmetic: datetime is imported only when the guest first reads or sets the clock (importing
# it costs ~1 ms of the VMM's start-up). tests/vmm/devices/test_rtc.py checks them.
_DAY = 86_400
_EPOCH_ORDINAL = 719_163  # datetime.date(1970, 1, 1).toordinal()
_MIN_TIME = float((1 - _EPOCH_ORDINAL) * _DAY)  # MIN_YEAR-01-01 00:00:00
_MAX_TIME = float((3_652_059 - _EPOCH_ORDINAL) * _DAY + _DAY - 1)  # MAX_YEAR-12-31 23:59:59


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


class Rtc(ByteRegisters):
    """The RTC/CMOS state machine; time comes from `clock`, interrupts go to `irq`.

    memory_size  -- guest RAM in bytes, for the CMOS memory-size fields.
    irq(level)   -- optional IRQF output; wire to KVM_IRQ_LINE for layout.RTC_IRQ.
    cpus         -- vCPU count, for CMOS 0x5F.
    clock()      -- host time in seconds since the epoch (UTC); injected by tests.
    Register on the port bus: `bus.register(layout.RTC_INDEX, Rtc.PORT_COUNT, rtc)`.
    """

    PORT_COUNT = 2

    def __init__(
        self,
        memory_size: int,
        irq: Callable[[bool], None] | None = None,
        cpus: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if memory_size < 0:
            raise ValueError(f"RTC: memory size must not be negative (got {memory_size})")
        if not 1 <= cpus <= MAX_CPUS:
            raise ValueError(f"RTC: vCPU count must be 1-{MAX_CPUS} (got {cpus})")
        super().__init__()
        self._irq = irq
        self._clock = clock
        self._cmos = bytearray(CMOS_SIZE)
        self._encoded_key: tuple[int, int] | None = None
        self._encoded: dict[int, int] = {}
        self._index = 0
        self._nmi_disabled = False
        self._offset = 0.0
        self._irq_level = False
        self._cmos[REG_A] = DEFAULT_A
        self._cmos[REG_B] = DEFAULT_B
        self._flags = 0
        self._last_second = math.floor(self._now())
        self._last_period: int | None = None
        self._fill_memory_fields(memory_size, cpus)

    def _fill_memory_fields(self, memory_size: int, cpus: int) -> None:
        below_4g = min(memory_size, MMIO_HOLE_START)
        above_4g = max(0, memory_size - below_4g)
        base_kib = min(below_4g // KIB, BASE_MEMORY_KIB)
        ext_kib = min(max(0, below_4g - MIB) // KIB, 0xFFFF)
        above_16m = min(max(0, below_4g - 16 * MIB) // (64 * KIB), 0xFFFF)
        high = min(above_4g // (64 * KIB), 0xFFFFFF)
        cmos = self._cmos
        cmos[CMOS_EQUIPMENT] = EQUIPMENT_FPU
        cmos[CMOS_BASE_MEMORY : CMOS_BASE_MEMORY + 2] = base_kib.to_bytes(2, "little")
        cmos[CMOS_EXT_MEMORY : CMOS_EXT_MEMORY + 2] = ext_kib.to_bytes(2, "little")
        cmos[CMOS_EXT_MEMORY_COPY : CMOS_EXT_MEMORY_COPY + 2] = ext_kib.to_bytes(2, "little")
        cmos[CMOS_MEMORY_ABOVE_16M : CMOS_MEMORY_ABOVE_16M + 2] = above_16m.to_bytes(2, "little")
        cmos[CMOS_MEMORY_ABOVE_4G : CMOS_MEMORY_ABOVE_4G + 3] = high.to_bytes(3, "little")
        cmos[CMOS_CPU_COUNT_MINUS_1] = cpus - 1
        checksum = sum(cmos[CHECKSUM_FIRST : CHECKSUM_LAST + 1])
        cmos[CMOS_CHECKSUM : CMOS_CHECKSUM + 2] = checksum.to_bytes(2, "big")

    def reset(self) -> None:
        """Machine reset: the clock and CMOS RAM survive (battery); interrupts are disabled."""
        with self._lock:
            self._cmos[REG_B] &= ~B_CLEARED_BY_RESET
            self._flags = 0
            self._update_irq()

    # --- host side ---

    def tick(self) -> float | None:
        """Bring flags and the IRQ line up to date; return when (host clock) to call again."""
        with self._lock:
            self._advance()
            self._update_irq()
            b = self._cmos[REG_B]
            deadlines = []
            if b & (B_UIE | B_AIE) and not b & B_SET:
                deadlines.append(math.floor(self._now()) + 1 - self._offset)
            period = self._period()
            if b & B_PIE and period is not None:
                deadlines.append((math.floor(self._clock() / period) + 1) * period)
            return min(deadlines) if deadlines else None

    @property
    def nmi_disabled(self) -> bool:
        with self._lock:
            return self._nmi_disabled

    @property
    def irq_level(self) -> bool:
        with self._lock:
            return self._irq_level

    def guest_time(self) -> float:
        """The guest's idea of now (seconds since the epoch, UTC)."""
        with self._lock:
            return self._now()

    # --- guest side ---

    def _read_byte(self, offset: int) -> int:
        if offset == INDEX:
            return 0xFF
        self._advance()
        reg = self._index
        if reg in TIME_REGISTERS:
            if self._cmos[REG_B] & B_SET:
                return self._cmos[reg]
            return self._encoded_time(self._now())[reg]
        if reg == REG_A:
            return self._cmos[REG_A] | (A_UIP if self._update_in_progress() else 0)
        if reg == REG_B:
            return self._cmos[REG_B]
        if reg == REG_C:
            value = self._flags | (C_IRQF if self._irqf() else 0)
            self._flags = 0
            self._update_irq()
            return value
        if reg == REG_D:
            return D_VRT
        return self._cmos[reg]

    def _write_byte(self, offset: int, value: int) -> None:
        if offset == INDEX:
            self._index = value & INDEX_MASK
            self._nmi_disabled = bool(value & INDEX_NMI_DISABLE)
            return
        self._advance()
        reg = self._index
        if reg in TIME_REGISTERS:
            if self._cmos[REG_B] & B_SET:
                self._cmos[reg] = value
            else:
                fields = dict(self._encoded_time(self._now()))
                fields[reg] = value
                self._set_time(fields)
        elif reg == REG_A:
            self._cmos[REG_A] = value & ~A_UIP
        elif reg == REG_B:
            self._write_b(value)
        elif reg not in (REG_C, REG_D):
            self._cmos[reg] = value
        self._update_irq()

    def _write_b(self, value: int) -> None:
        old = self._cmos[REG_B]
        if value & B_SET:
            value &= ~B_UIE
            if not old & B_SET:
                # Freeze the registers as they read now; guest writes then edit this latch.
                for reg, byte in self._encoded_time(self._now()).items():
                    self._cmos[reg] = byte
        self._cmos[REG_B] = value
        if old & B_SET and not value & B_SET:
            self._set_time({reg: self._cmos[reg] for reg in TIME_REGISTERS})

    # --- time keeping ---

    def _now(self) -> float:
        return _clamp_time(self._clock() + self._offset)

    def _binary(self) -> bool:
        return bool(self._cmos[REG_B] & B_DM_BINARY)

    def _encode(self, value: int) -> int:
        return value if self._binary() else ((value // 10) << 4) | (value % 10)

    def _decode(self, byte: int) -> int:
        return byte if self._binary() else (byte >> 4) * 10 + (byte & 0x0F)

    def _encoded_time(self, now: float) -> dict[int, int]:
        """Register values for `now` in the current format; shared cache, do not modify.

        Cached because guests read the clock field by field, several times per second.
        """
        key = (math.floor(now), self._cmos[REG_B] & (B_24H | B_DM_BINARY))
        if key != self._encoded_key:
            self._encoded_key, self._encoded = key, self._encode_time(key[0])
        return self._encoded

    def _encode_time(self, second: int) -> dict[int, int]:
        import datetime  # noqa: PLC0415 - see _MIN_TIME

        t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=second)
        if self._cmos[REG_B] & B_24H:
            hours = self._encode(t.hour)
        else:
            hours = self._encode(t.hour % 12 or 12) | (HOUR_PM if t.hour >= 12 else 0)
        return {
            REG_SECONDS: self._encode(t.second),
            REG_MINUTES: self._encode(t.minute),
            REG_HOURS: hours,
            REG_DAY_OF_WEEK: self._encode(t.isoweekday() % 7 + 1),
            REG_DAY: self._encode(t.day),
            REG_MONTH: self._encode(t.month),
            REG_YEAR: self._encode(t.year % 100),
            REG_CENTURY: self._encode(t.year // 100),
        }

    def _set_time(self, fields: dict[int, int]) -> None:
        hours_byte = fields[REG_HOURS]
        if self._cmos[REG_B] & B_24H:
            hour = self._decode(hours_byte)
        else:
            hour = self._decode(hours_byte & ~HOUR_PM) % 12 + (12 if hours_byte & HOUR_PM else 0)
        century = _clamp(self._decode(fields[REG_CENTURY]), 0, 99)
        year = _clamp(
            century * 100 + _clamp(self._decode(fields[REG_YEAR]), 0, 99), MIN_YEAR, MAX_YEAR
        )
        month = _clamp(self._decode(fields[REG_MONTH]), 1, 12)
        day = _clamp(self._decode(fields[REG_DAY]), 1, 31)
        import datetime  # noqa: PLC0415 - see _MIN_TIME

        moment = datetime.datetime(year, month, 1) + datetime.timedelta(
            days=day - 1,
            hours=_clamp(hour, 0, 23),
            minutes=_clamp(self._decode(fields[REG_MINUTES]), 0, 59),
            seconds=_clamp(self._decode(fields[REG_SECONDS]), 0, 59),
        )
        target = _clamp_time((moment - datetime.datetime(1970, 1, 1)).total_seconds())
        self._offset = target - self._clock()
        self._last_second = math.floor(self._now())  # a new time is not an update cycle

    def _update_in_progress(self) -> bool:
        if self._cmos[REG_B] & B_SET:
            return False
        now = self._now()
        return now - math.floor(now) >= 1 - UIP_HOLD_SECONDS

    def _period(self) -> float | None:
        """Periodic interrupt period in seconds from register A's rate bits (None = off)."""
        rate = self._cmos[REG_A] & A_RATE_MASK
        if rate == 0:
            return None
        if rate <= 2:
            rate += 7  # rates 1 and 2 alias 256 Hz and 128 Hz
        return (1 << (rate - 1)) / OSCILLATOR_HZ

    def _advance(self) -> None:
        b = self._cmos[REG_B]
        if not b & B_SET:
            second = math.floor(self._now())
            if second != self._last_second:
                self._last_second = second
                self._flags |= C_UF
                if self._alarm_matches(second):
                    self._flags |= C_AF
        period = self._period()
        if period is None:
            self._last_period = None
        else:
            index = math.floor(self._clock() / period)
            if self._last_period is not None and index != self._last_period:
                self._flags |= C_PF
            self._last_period = index

    def _alarm_matches(self, second: int) -> bool:
        now = self._encoded_time(second)
        for alarm_reg, time_reg in (
            (REG_SECONDS_ALARM, REG_SECONDS),
            (REG_MINUTES_ALARM, REG_MINUTES),
            (REG_HOURS_ALARM, REG_HOURS),
        ):
            alarm = self._cmos[alarm_reg]
            if alarm & ALARM_DONT_CARE != ALARM_DONT_CARE and alarm != now[time_reg]:
                return False
        return True

    def _irqf(self) -> bool:
        enabled = self._cmos[REG_B] & (B_PIE | B_AIE | B_UIE)
        # C's PF/AF/UF bits sit at the same positions as B's PIE/AIE/UIE enables.
        return bool(self._flags & enabled)

    def _update_irq(self) -> None:
        level = self._irqf()
        if level != self._irq_level:
            self._irq_level = level
            if self._irq is not None:
                self._irq(level)


def _clamp_time(t: float) -> float:
    return max(_MIN_TIME, min(_MAX_TIME, t))
