"""Intel MultiProcessor Specification 1.4 table at layout.MPTABLE, for guests without ACPI.

Linux finds the floating pointer by scanning the last KiB of base memory (0x9FC00), where the
EBDA starts. ISA IRQs 0-15 (the virtio GSIs in layout.VIRTIO_IRQS are among them) are wired
1:1 to IOAPIC pins, matching KVM's default GSI routing; LINT0 is ExtINT (the PIC) and LINT1 NMI.
"""

from __future__ import annotations

import struct

from vmgui.vmm import layout
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.memory import GuestMemory

MPC_SPEC_REV = 4
APIC_VERSION = 0x14
IOAPIC_VERSION = 0x11
CPU_ENABLED = 1
CPU_BOOTPROCESSOR = 2
CPU_SIGNATURE = 0x600  # family 6
CPU_FEATURES = 0x201  # FPU | APIC
MP_IRQ_INT = 0
MP_IRQ_NMI = 1
MP_IRQ_EXTINT = 3
MP_IRQ_CONFORMS = 0
ISA_BUS_ID = 0
ISA_IRQS = 16
ALL_APICS = 0xFF
_FLOATING_SIZE = 16
_HEADER_SIZE = 44
_CPU_SIZE = 20
_SMALL_SIZE = 8
#: The table must stay between the EBDA start and the VGA hole (1 KiB).
MPTABLE_SPACE = layout.BIOS_AREA_START - layout.MPTABLE
MAX_CPUS = (
    MPTABLE_SPACE - _FLOATING_SIZE - _HEADER_SIZE - _SMALL_SIZE * (2 + ISA_IRQS + 2)
) // _CPU_SIZE


def _checksum(data: bytes | bytearray) -> int:
    return (-sum(data)) & 0xFF


def ioapic_id(ncpus: int) -> int:
    """The IOAPIC's APIC ID: the first one after the vCPUs' (the same in MADT)."""
    return ncpus


def build_mptable(mem: GuestMemory, ncpus: int) -> int:
    """Write the MP floating pointer and configuration table; return the pointer's address."""
    if not 1 <= ncpus <= MAX_CPUS:
        raise BootError(f"MP table supports 1..{MAX_CPUS} vCPUs, not {ncpus}")
    entries = bytearray()
    for cpu in range(ncpus):
        flags = CPU_ENABLED | (CPU_BOOTPROCESSOR if cpu == 0 else 0)
        entries += struct.pack(
            "<BBBBII8x", 0, cpu, APIC_VERSION, flags, CPU_SIGNATURE, CPU_FEATURES
        )
    entries += struct.pack("<BB6s", 1, ISA_BUS_ID, b"ISA   ")
    entries += struct.pack("<BBBBI", 2, ioapic_id(ncpus), IOAPIC_VERSION, 1, layout.IOAPIC_BASE)
    for irq in range(ISA_IRQS):
        entries += struct.pack(
            "<BBHBBBB", 3, MP_IRQ_INT, MP_IRQ_CONFORMS, ISA_BUS_ID, irq, ioapic_id(ncpus), irq
        )
    entries += struct.pack(
        "<BBHBBBB", 4, MP_IRQ_EXTINT, MP_IRQ_CONFORMS, ISA_BUS_ID, 0, ALL_APICS, 0
    )
    entries += struct.pack("<BBHBBBB", 4, MP_IRQ_NMI, MP_IRQ_CONFORMS, ISA_BUS_ID, 0, ALL_APICS, 1)
    count = ncpus + 1 + 1 + ISA_IRQS + 2

    table_addr = layout.MPTABLE + _FLOATING_SIZE
    header = bytearray(
        struct.pack(
            "<4sHBB8s12sIHHIHBB",
            b"PCMP",
            _HEADER_SIZE + len(entries),
            MPC_SPEC_REV,
            0,
            b"VMGUI   ",
            b"BUILTIN-VMM ",
            0,
            0,
            count,
            layout.LAPIC_BASE,
            0,
            0,
            0,
        )
    )
    table = header + entries
    table[7] = _checksum(table)
    floating = bytearray(struct.pack("<4sIBBBBB3x", b"_MP_", table_addr, 1, MPC_SPEC_REV, 0, 0, 0))
    floating[10] = _checksum(floating)
    mem.write(layout.MPTABLE, floating + table)
    return layout.MPTABLE
