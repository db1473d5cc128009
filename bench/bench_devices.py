"""Legacy device models: cost of one guest port access through the Bus, per device and path.

Every port exit a guest makes ends in one of these calls, so their cost bounds the VMM's
port-I/O rate for console output, keyboard polling and clock reads. Prints accesses/s and the
ratio to a bare Bus miss (the floor: lookup + stats, no device). Asserts only correctness.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vmgui.vmm import layout
from vmgui.vmm.devices import serial as s
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.devices.i8042 import I8042
from vmgui.vmm.devices.rtc import Rtc
from vmgui.vmm.devices.serial import Serial

N = 100_000


def rate(fn: Callable[[], object], n: int = N) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    sent: list[bytes] = []
    irqs: list[bool] = []
    bus = Bus("pio")
    uart = Serial(sent.append, irqs.append)
    kbc = I8042(irqs.append, lambda: None)
    rtc = Rtc(256 << 20, irqs.append)
    bus.register(layout.SERIAL_COM1, Serial.PORT_COUNT, uart)
    bus.register(layout.I8042_DATA, I8042.PORT_COUNT, kbc)
    bus.register(layout.RTC_INDEX, Rtc.PORT_COUNT, rtc)
    com1 = layout.SERIAL_COM1
    bus.write(layout.RTC_INDEX, 1, 0x00)

    floor = rate(lambda: bus.write(0x5F0, 1, 0))
    cases: list[tuple[str, Callable[[], object]]] = [
        ("serial THR write, IER=0 (polling console)", lambda: bus.write(com1, 1, 0x41)),
        ("serial LSR read", lambda: bus.read(com1 + s.LSR, 1)),
        ("i8042 status read (keyboard poll)", lambda: bus.read(layout.I8042_COMMAND, 1)),
        ("rtc seconds read", lambda: bus.read(layout.RTC_DATA, 1)),
    ]
    print(f"{'bus miss (floor)':45s} {floor:12,.0f} /s")
    for name, fn in cases:
        r = rate(fn)
        print(f"{name:45s} {r:12,.0f} /s   {r / floor:5.2f}x floor")
    sent.clear()
    bus.write(com1 + s.IER_DLM, 1, s.IER_THRI)
    r = rate(lambda: bus.write(com1, 1, 0x41))
    print(
        f"{'serial THR write, THRI on (2 IRQ edges)':45s} {r:12,.0f} /s   {r / floor:5.2f}x floor"
    )
    assert b"".join(sent) == b"A" * N
    assert len(irqs) >= 2 * N


if __name__ == "__main__":
    main()
