"""Loader and firmware-table cost: what the VMM spends before the first guest instruction.

Part of "process start to the guest's first serial byte": times build_acpi, build_mptable,
load_pvh (a 1 MiB synthesized PVH image) and load_bzimage (the Debian kernel from
tests/fetch_assets.sh, when present, with an 8 MiB initrd) into fresh 256 MiB guest memory.
Prints the median of several runs in ms and the share of copying (a bare memory write of the same
bytes). Asserts only correctness.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tests.vmm.boot.elf_images import make_elf, xen_entry_note
from vmgui.vmm import layout
from vmgui.vmm.acpi import build_acpi
from vmgui.vmm.boot import FramebufferInfo, build_mptable, load_bzimage, load_pvh
from vmgui.vmm.memory import GuestMemory

RUNS = 7
MEMORY = 256 << 20
KERNEL = Path(__file__).resolve().parents[1] / ".cache/debian-kernel/vmlinuz"
INITRD = bytes(8 << 20)


def median_ms(step: Callable[[GuestMemory], object]) -> float:
    times = []
    for _ in range(RUNS):
        mem = GuestMemory.create(MEMORY)
        try:
            start = time.perf_counter()
            step(mem)
            times.append(time.perf_counter() - start)
        finally:
            mem.close()
    return 1e3 * statistics.median(times)


def main() -> None:
    acpi = median_ms(lambda m: build_acpi(m, 2))
    mp = median_ms(lambda m: build_mptable(m, 2))
    print(f"build_acpi(2 vCPUs)     {acpi:8.3f} ms")
    print(f"build_mptable(2 vCPUs)  {mp:8.3f} ms")

    pvh = make_elf([(0x100000, bytes(1 << 20), 1 << 20)], xen_entry_note(0x100000))

    def pvh_step(m: GuestMemory) -> None:
        assert load_pvh(m, pvh, "console=ttyS0").rip == 0x100000

    print(f"load_pvh(1 MiB ELF)     {median_ms(pvh_step):8.3f} ms")

    if not KERNEL.exists():
        print(f"load_bzimage: skipped, {KERNEL} missing (run tests/fetch_assets.sh)")
        return
    kernel = KERNEL.read_bytes()
    fb = FramebufferInfo(layout.FRAMEBUFFER_BASE, 1024, 768)

    def bz_step(m: GuestMemory) -> None:
        state = load_bzimage(m, kernel, "console=ttyS0", INITRD, fb, layout.ACPI_TABLES)
        assert state.rsi == layout.ZERO_PAGE and state.mode == "long64"

    def copy_step(m: GuestMemory) -> None:
        m.write(16 << 20, kernel)
        m.write(MEMORY - len(INITRD), INITRD)

    bz, copy = median_ms(bz_step), median_ms(copy_step)
    print(f"load_bzimage(+8 MiB initrd) {bz:8.3f} ms")
    print(f"  bare copy of the same bytes {copy:8.3f} ms  (loader / copy = {bz / copy:.2f}x)")


if __name__ == "__main__":
    main()
