"""ACPI tables for the firmware, handed over as fw_cfg files plus a linker/loader script.

The firmware, not the VMM, places the tables: `etc/table-loader` is a list of 128-byte
little-endian commands (QEMU's bios-linker-loader format, run by SeaBIOS's romfile_loader):
ALLOCATE copies a file into guest memory (the RSDP into the F segment, where Linux and boot
loaders scan for it; the rest high), ADD_POINTER adds a file's final address to a pointer that
holds an offset into that file, ADD_CHECKSUM fixes a checksum after the patching.

`etc/acpi/tables` holds DSDT, FADT, MADT and XSDT (pointers inside it are offsets from its
start); `etc/acpi/rsdp` the RSDP. The DSDT lists every virtio-mmio device (LNRO0005 with its
window and interrupt): that is how SeaBIOS finds the disks, and later the OS its devices.
"""

from __future__ import annotations

import struct

from vmgui.vmm.acpi import tables
from vmgui.vmm.acpi.dsdt import dsdt
from vmgui.vmm.acpi.sdt import RSDP_SIZE, RSDP_V1_SIZE, rsdp
from vmgui.vmm.boot.mptable import ioapic_id

TABLES_FILE = "etc/acpi/tables"
RSDP_FILE = "etc/acpi/rsdp"
LOADER_FILE = "etc/table-loader"

COMMAND_SIZE = 128
LOADER_NAME_SIZE = 56
CMD_ALLOCATE = 1
CMD_ADD_POINTER = 2
CMD_ADD_CHECKSUM = 3
ZONE_HIGH = 1
ZONE_FSEG = 2
TABLES_ALIGN = 64
RSDP_ALIGN = 16
TABLE_ALIGN = 8

# Offsets inside the tables (ACPI 6.5): header checksum, FADT DSDT / X_DSDT, RSDP fields.
SDT_CHECKSUM = 9
SDT_LENGTH = 4
FADT_DSDT = 40
FADT_X_DSDT = 140
XSDT_ENTRIES = 36
RSDP_CHECKSUM = 8
RSDP_XSDT = 24
RSDP_EXT_CHECKSUM = 32


def _name(text: str) -> bytes:
    return text.encode().ljust(LOADER_NAME_SIZE, b"\0")


def allocate(file: str, align: int, zone: int) -> bytes:
    body = struct.pack("<I56sIB", CMD_ALLOCATE, _name(file), align, zone)
    return body.ljust(COMMAND_SIZE, b"\0")


def add_pointer(dest: str, src: str, offset: int, size: int) -> bytes:
    body = struct.pack("<I56s56sIB", CMD_ADD_POINTER, _name(dest), _name(src), offset, size)
    return body.ljust(COMMAND_SIZE, b"\0")


def add_checksum(file: str, offset: int, start: int, length: int) -> bytes:
    body = struct.pack("<I56sIII", CMD_ADD_CHECKSUM, _name(file), offset, start, length)
    return body.ljust(COMMAND_SIZE, b"\0")


def _align(n: int, a: int) -> int:
    return (n + a - 1) & ~(a - 1)


def build_acpi_files(ncpus: int, virtio_devices: int) -> dict[str, bytes]:
    """The three fw_cfg files: tables blob, RSDP and the loader script."""
    blob = bytearray()

    def place(table: bytes) -> int:
        off = _align(len(blob), TABLE_ALIGN)
        blob.extend(bytes(off - len(blob)))
        blob.extend(table)
        return off

    dsdt_off = place(dsdt(virtio_devices=virtio_devices))
    fadt = bytearray(tables.fadt(dsdt_off))
    fadt[FADT_DSDT : FADT_DSDT + 4] = struct.pack("<I", dsdt_off)  # SeaBIOS reads this field
    fadt_off = place(bytes(fadt))
    madt_off = place(tables.madt(ncpus, ioapic_id(ncpus)))
    xsdt_off = place(tables.xsdt([fadt_off, madt_off]))
    rsdp_data = rsdp(xsdt_off)

    loader = [
        allocate(RSDP_FILE, RSDP_ALIGN, ZONE_FSEG),
        allocate(TABLES_FILE, TABLES_ALIGN, ZONE_HIGH),
        add_pointer(TABLES_FILE, TABLES_FILE, fadt_off + FADT_DSDT, 4),
        add_pointer(TABLES_FILE, TABLES_FILE, fadt_off + FADT_X_DSDT, 8),
        add_pointer(TABLES_FILE, TABLES_FILE, xsdt_off + XSDT_ENTRIES, 8),
        add_pointer(TABLES_FILE, TABLES_FILE, xsdt_off + XSDT_ENTRIES + 8, 8),
        add_pointer(RSDP_FILE, TABLES_FILE, RSDP_XSDT, 8),
    ]
    for off in (dsdt_off, fadt_off, madt_off, xsdt_off):
        (length,) = struct.unpack_from("<I", blob, off + SDT_LENGTH)
        blob[off + SDT_CHECKSUM] = 0
        loader.append(add_checksum(TABLES_FILE, off + SDT_CHECKSUM, off, length))
    rsdp_bytes = bytearray(rsdp_data)
    rsdp_bytes[RSDP_CHECKSUM] = 0
    rsdp_bytes[RSDP_EXT_CHECKSUM] = 0
    loader.append(add_checksum(RSDP_FILE, RSDP_CHECKSUM, 0, RSDP_V1_SIZE))
    loader.append(add_checksum(RSDP_FILE, RSDP_EXT_CHECKSUM, 0, RSDP_SIZE))
    return {
        TABLES_FILE: bytes(blob),
        RSDP_FILE: bytes(rsdp_bytes),
        LOADER_FILE: b"".join(loader),
    }
