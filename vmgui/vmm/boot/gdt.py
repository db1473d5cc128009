"""The boot GDT at layout.BOOT_GDT, shared by both entry protocols, and the matching segments.

Selectors: 0x08 flat 32-bit code (PVH), 0x10 flat 64-bit code (__BOOT_CS), 0x18 flat data
(__BOOT_DS; D/B set so it also serves 32-bit mode), 0x20 a busy 32-bit TSS (KVM wants a valid TR
in protected mode). The IDT is one zero entry: interrupts stay off until the kernel sets its own.
"""

from __future__ import annotations

import struct

from vmgui.vmm import layout
from vmgui.vmm.boot.cpu_state import DescriptorTable, Segment
from vmgui.vmm.memory import GuestMemory

CODE32_SELECTOR = 0x08
CODE64_SELECTOR = 0x10  # Linux's __BOOT_CS
DATA_SELECTOR = 0x18  # Linux's __BOOT_DS
TSS_SELECTOR = 0x20

# Descriptor flag words (bits 8-15 access byte, bits 12-15 of the high nibble G/DB/L/AVL).
_CODE32 = 0xC09B
_CODE64 = 0xA09B
_DATA = 0xC093
_TSS = 0x008B
_TSS_LIMIT = 0x67

_ENTRIES: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (_CODE32, 0, 0xFFFFF),
    (_CODE64, 0, 0xFFFFF),
    (_DATA, 0, 0xFFFFF),
    (_TSS, 0, _TSS_LIMIT),
)


def descriptor(flags: int, base: int, limit: int) -> int:
    """Encode one 8-byte segment descriptor."""
    return (
        ((base & 0xFF000000) << 32)
        | ((flags & 0xF0FF) << 40)
        | ((limit & 0x000F0000) << 32)
        | ((base & 0x00FFFFFF) << 16)
        | (limit & 0x0000FFFF)
    )


def segment(selector: int) -> Segment:
    """The hidden segment state KVM must hold for `selector` in the boot GDT."""
    flags, base, limit = _ENTRIES[selector >> 3]
    g = (flags >> 15) & 1
    return Segment(
        base=base,
        limit=(limit << 12) | 0xFFF if g else limit,
        selector=selector,
        type=flags & 0xF,
        present=(flags >> 7) & 1,
        dpl=(flags >> 5) & 3,
        db=(flags >> 14) & 1,
        s=(flags >> 4) & 1,
        l=(flags >> 13) & 1,
        g=g,
        avl=(flags >> 12) & 1,
    )


def write_gdt(mem: GuestMemory) -> tuple[DescriptorTable, DescriptorTable]:
    """Write the GDT and an empty IDT; return (gdt, idt) table registers."""
    gdt = b"".join(struct.pack("<Q", descriptor(*e)) for e in _ENTRIES)
    mem.write(layout.BOOT_GDT, gdt)
    mem.write_u64(layout.BOOT_IDT, 0)
    return DescriptorTable(layout.BOOT_GDT, len(gdt) - 1), DescriptorTable(layout.BOOT_IDT, 7)
