"""Identity page tables for the 64-bit entry: 2 MiB pages mapping guest-physical 0..4 GiB.

The Linux 64-bit entry needs the kernel, zero page and command line identity-mapped; mapping all
of the low 4 GiB costs four PD pages and covers any load address below the 32-bit hole too.
"""

from __future__ import annotations

import struct

from vmgui.vmm import layout
from vmgui.vmm.memory import GuestMemory

PAGE_PRESENT = 1 << 0
PAGE_RW = 1 << 1
PAGE_PS = 1 << 7  # in a PD entry: this maps a 2 MiB page
PAGE_SIZE_2M = 1 << 21
IDENTITY_MAPPED = 1 << 32
_PD_PAGES = IDENTITY_MAPPED >> 30  # one PD page per GiB
_ENTRIES_PER_PAGE = 512


def write_identity_page_tables(mem: GuestMemory) -> int:
    """Write PML4, PDPT and PDs at their layout addresses; return the CR3 value."""
    mem.write(
        layout.PML4, struct.pack("<Q", layout.PDPT | PAGE_PRESENT | PAGE_RW).ljust(4096, b"\0")
    )
    pdpt = b"".join(
        struct.pack("<Q", (layout.PD + i * 4096) | PAGE_PRESENT | PAGE_RW) for i in range(_PD_PAGES)
    )
    mem.write(layout.PDPT, pdpt.ljust(4096, b"\0"))
    n = _PD_PAGES * _ENTRIES_PER_PAGE
    pd = struct.pack(
        f"<{n}Q", *((i * PAGE_SIZE_2M) | PAGE_PRESENT | PAGE_RW | PAGE_PS for i in range(n))
    )
    mem.write(layout.PD, pd)
    return layout.PML4
