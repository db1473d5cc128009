"""Minimal ACPI for the built-in machine: RSDP, XSDT, reduced-hardware FADT, DSDT, MADT.

Pure: writes tables into guest memory between layout.ACPI_TABLES and layout.ACPI_TABLES_END and
returns the RSDP address (for boot_params.acpi_rsdp_addr / hvm_start_info.rsdp_paddr; Linux also
finds it by scanning 0xE0000-0xFFFFF).
"""

from __future__ import annotations

from vmgui.vmm import layout
from vmgui.vmm.acpi import tables
from vmgui.vmm.acpi.dsdt import dsdt
from vmgui.vmm.acpi.sdt import RSDP_SIZE, rsdp
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.boot.mptable import ioapic_id
from vmgui.vmm.memory import GuestMemory

TABLE_ALIGN = 16

__all__ = ["build_acpi", "tables_end"]

_RSDP_XSDT_ADDRESS = 24
_SDT_LENGTH = 4
_SDT_HEADER_SIZE = 36
_FADT_X_DSDT_OFFSET = 140


def _align(n: int) -> int:
    return (n + TABLE_ALIGN - 1) & ~(TABLE_ALIGN - 1)


def build_acpi(
    mem: GuestMemory,
    ncpus: int,
    *,
    serial: bool = True,
    i8042: bool = True,
    rtc: bool = True,
    virtio_devices: int = 0,
    timer_on_gsi2: bool = False,
) -> int:
    """Write the ACPI tables; return the RSDP's guest-physical address.

    `virtio_devices` > 0 also describes that many virtio-mmio slots (LNRO0005) in the DSDT, so a
    guest needs no virtio_mmio.device= on its command line (do not do both).
    """
    if not 1 <= ncpus <= tables.MAX_CPUS:
        raise BootError(f"ACPI supports 1..{tables.MAX_CPUS} vCPUs, not {ncpus}")
    rsdp_addr = layout.ACPI_TABLES
    dsdt_addr = _align(rsdp_addr + RSDP_SIZE)
    dsdt_table = dsdt(serial=serial, i8042=i8042, rtc=rtc, virtio_devices=virtio_devices)
    fadt_addr = _align(dsdt_addr + len(dsdt_table))
    fadt_table = tables.fadt(dsdt_addr, i8042=i8042)
    madt_addr = _align(fadt_addr + len(fadt_table))
    madt_table = tables.madt(ncpus, ioapic_id(ncpus), timer_on_gsi2=timer_on_gsi2)
    xsdt_addr = _align(madt_addr + len(madt_table))
    xsdt_table = tables.xsdt([fadt_addr, madt_addr])
    end = xsdt_addr + len(xsdt_table)
    if end > layout.ACPI_TABLES_END:
        raise BootError(
            f"ACPI tables need {end - rsdp_addr} bytes, only "
            f"{layout.ACPI_TABLES_END - rsdp_addr} are reserved"
        )
    mem.fill(rsdp_addr, end - rsdp_addr)
    mem.write(dsdt_addr, dsdt_table)
    mem.write(fadt_addr, fadt_table)
    mem.write(madt_addr, madt_table)
    mem.write(xsdt_addr, xsdt_table)
    mem.write(rsdp_addr, rsdp(xsdt_addr))
    return rsdp_addr


def tables_end(mem: GuestMemory, rsdp_addr: int) -> int:
    """End of the tables `build_acpi` wrote at `rsdp_addr` (found through the RSDP, so a loader
    can tell a real overlap with them from a segment that merely lands near 0xE0000)."""
    xsdt = mem.read_u64(rsdp_addr + _RSDP_XSDT_ADDRESS)
    found = [xsdt] + [mem.read_u64(xsdt + off)
                      for off in range(_SDT_HEADER_SIZE, mem.read_u32(xsdt + _SDT_LENGTH), 8)]
    found += [mem.read_u64(t + _FADT_X_DSDT_OFFSET) for t in found if mem.read(t, 4) == b"FACP"]
    return max([rsdp_addr + RSDP_SIZE] + [t + mem.read_u32(t + _SDT_LENGTH) for t in found])
