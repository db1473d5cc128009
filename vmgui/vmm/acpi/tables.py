"""XSDT, FADT (reduced hardware) and MADT builders; each returns a complete, checksummed table."""

from __future__ import annotations

import struct

from vmgui.vmm import layout
from vmgui.vmm.acpi.sdt import GAS_SYSTEM_IO, gas, sdt

XSDT_REVISION = 1
FADT_REVISION = 6
FADT_MINOR_REVISION = 5
FADT_SIZE = 276
MADT_REVISION = 5

# FADT flags (ACPI 6.5 table 5.10)
FADT_PWR_BUTTON = 1 << 4  # power button is a control-method device, not fixed hardware
FADT_SLP_BUTTON = 1 << 5
FADT_RESET_REG_SUP = 1 << 10
FADT_HW_REDUCED_ACPI = 1 << 20
# IA-PC boot architecture flags
BOOT_LEGACY_DEVICES = 1 << 0
BOOT_8042 = 1 << 1
BOOT_VGA_NOT_PRESENT = 1 << 2
BOOT_MSI_NOT_PRESENT = 1 << 3

# FADT field offsets
_FADT_SCI_INT = 46
_FADT_IAPC_BOOT_ARCH = 109
_FADT_FLAGS = 112
_FADT_RESET_REG = 116
_FADT_RESET_VALUE = 128
_FADT_MINOR = 131
_FADT_X_DSDT = 140
_FADT_SLEEP_CONTROL = 244
_FADT_SLEEP_STATUS = 256
_FADT_HYPERVISOR_ID = 268

# MADT
MADT_PCAT_COMPAT = 1 << 0
MADT_LAPIC = 0
MADT_IOAPIC = 1
MADT_ISO = 2
MADT_LAPIC_NMI = 4
LAPIC_ENABLED = 1 << 0
MPS_INTI_POLARITY_HIGH = 0x1
MPS_INTI_POLARITY_LOW = 0x3
MPS_INTI_TRIGGER_EDGE = 0x1 << 2
MPS_INTI_TRIGGER_LEVEL = 0x3 << 2
ALL_PROCESSORS = 0xFF
LINT1 = 1
#: APIC IDs are 8 bit in the xAPIC MADT entry; one ID above the vCPUs goes to the IOAPIC.
MAX_CPUS = 254


def xsdt(tables: list[int]) -> bytes:
    return sdt(b"XSDT", XSDT_REVISION, b"".join(struct.pack("<Q", t) for t in tables))


def fadt(dsdt_addr: int, *, i8042: bool = True) -> bytes:
    """Reduced-hardware FADT: sleep control/status and reset registers are I/O ports."""
    body = bytearray(FADT_SIZE - 36)

    def put(off: int, data: bytes) -> None:
        body[off - 36 : off - 36 + len(data)] = data

    put(_FADT_SCI_INT, struct.pack("<H", layout.ACPI_GED_IRQ))
    boot_arch = BOOT_LEGACY_DEVICES | BOOT_VGA_NOT_PRESENT | BOOT_MSI_NOT_PRESENT
    if i8042:
        boot_arch |= BOOT_8042
    put(_FADT_IAPC_BOOT_ARCH, struct.pack("<H", boot_arch))
    flags = FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP | FADT_PWR_BUTTON | FADT_SLP_BUTTON
    put(_FADT_FLAGS, struct.pack("<I", flags))
    put(_FADT_RESET_REG, gas(GAS_SYSTEM_IO, 8, layout.ACPI_RESET_PORT))
    put(_FADT_RESET_VALUE, bytes([layout.ACPI_RESET_VALUE]))
    put(_FADT_MINOR, bytes([FADT_MINOR_REVISION]))
    put(_FADT_X_DSDT, struct.pack("<Q", dsdt_addr))
    put(_FADT_SLEEP_CONTROL, gas(GAS_SYSTEM_IO, 8, layout.ACPI_SLEEP_CONTROL))
    put(_FADT_SLEEP_STATUS, gas(GAS_SYSTEM_IO, 8, layout.ACPI_SLEEP_STATUS))
    put(_FADT_HYPERVISOR_ID, b"VMGUIVMM")
    return sdt(b"FACP", FADT_REVISION, bytes(body))


def madt(ncpus: int, ioapic_id: int, *, timer_on_gsi2: bool = False) -> bytes:
    """One enabled LAPIC per vCPU, the IOAPIC at GSI base 0, overrides and the LINT1 NMI.

    ISA IRQs map 1:1 to GSIs (KVM's default routing) except the GED/SCI line, declared level /
    active high to match the GED's _CRS. `timer_on_gsi2` adds QEMU's IRQ0 -> GSI2 override, for
    a machine that routes the PIT to IOAPIC pin 2.
    """
    if not 1 <= ncpus <= MAX_CPUS:
        raise ValueError(f"MADT supports 1..{MAX_CPUS} vCPUs, not {ncpus}")
    body = bytearray(struct.pack("<II", layout.LAPIC_BASE, MADT_PCAT_COMPAT))
    for cpu in range(ncpus):
        body += struct.pack("<BBBBI", MADT_LAPIC, 8, cpu, cpu, LAPIC_ENABLED)
    body += struct.pack("<BBBBII", MADT_IOAPIC, 12, ioapic_id, 0, layout.IOAPIC_BASE, 0)
    if timer_on_gsi2:
        body += struct.pack("<BBBBIH", MADT_ISO, 10, 0, 0, 2, 0)
    sci_flags = MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_LEVEL
    body += struct.pack(
        "<BBBBIH", MADT_ISO, 10, 0, layout.ACPI_GED_IRQ, layout.ACPI_GED_IRQ, sci_flags
    )
    body += struct.pack("<BBBHB", MADT_LAPIC_NMI, 6, ALL_PROCESSORS, 0, LINT1)
    return sdt(b"APIC", MADT_REVISION, bytes(body))
