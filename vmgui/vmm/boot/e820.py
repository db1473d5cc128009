"""The machine's physical memory map as the guest sees it (BIOS e820 / PVH memmap).

RAM below the EBDA, the EBDA + VGA/BIOS area reserved (the MP table and ACPI tables live there),
RAM from 1 MiB up to the 32-bit hole, and RAM above 4 GiB. Device windows (framebuffer, virtio,
GED, IOAPIC, LAPIC, KVM's TSS/identity pages) are never reported as RAM, so the guest cannot
allocate over them.
"""

from __future__ import annotations

from vmgui.vmm import layout
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.record import record

E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3

#: Smallest RAM the loaders accept: boot structures below 1 MiB plus a little above it.
MIN_MEMORY = 2 << 20

#: Lowest device window; nothing from here up to 4 GiB may be called RAM.
MMIO_WINDOWS_START = min(
    layout.FRAMEBUFFER_BASE,
    layout.VIRTIO_MMIO_BASE,
    layout.ACPI_GED_BASE,
    layout.IOAPIC_BASE,
    layout.LAPIC_BASE,
    layout.KVM_IDENTITY_MAP,
    layout.KVM_TSS,
)
_4G = 1 << 32


@record(frozen=True)
class E820Entry:
    addr: int
    size: int
    type: int

    @property
    def end(self) -> int:
        return self.addr + self.size


def _subtract(ranges: list[tuple[int, int]], hole: tuple[int, int]) -> list[tuple[int, int]]:
    out = []
    for start, end in ranges:
        if end <= hole[0] or start >= hole[1]:
            out.append((start, end))
            continue
        if start < hole[0]:
            out.append((start, hole[0]))
        if end > hole[1]:
            out.append((hole[1], end))
    return out


def build_e820(mem: GuestMemory) -> list[E820Entry]:
    """The map for `mem`, sorted by address; BootError if there is too little low RAM to boot."""
    if mem.low_ram_end < MIN_MEMORY:
        raise BootError(
            f"guest memory too small: {mem.low_ram_end // 1024} KiB of low RAM, "
            f"need at least {MIN_MEMORY >> 20} MiB"
        )
    ram = [(r.guest_addr, r.end) for r in mem.regions]
    ram = _subtract(ram, (layout.EBDA_START, layout.HIMEM_START))
    ram = _subtract(ram, (MMIO_WINDOWS_START, _4G))
    entries = [E820Entry(s, e - s, E820_RAM) for s, e in ram if e > s]
    entries.append(
        E820Entry(layout.EBDA_START, layout.HIMEM_START - layout.EBDA_START, E820_RESERVED)
    )
    return sorted(entries, key=lambda e: e.addr)
