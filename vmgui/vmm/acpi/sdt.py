"""System description table plumbing: the common header, checksums and the RSDP."""

from __future__ import annotations

import struct

OEM_ID = b"VMGUI "
OEM_TABLE_ID = b"VMGUIVMM"
OEM_REVISION = 1
CREATOR_ID = b"VMGU"
CREATOR_REVISION = 1
HEADER_SIZE = 36
RSDP_SIGNATURE = b"RSD PTR "
RSDP_REVISION = 2
RSDP_SIZE = 36
RSDP_V1_SIZE = 20


def checksum(data: bytes | bytearray) -> int:
    """The byte that makes `data` sum to zero mod 256."""
    return (-sum(data)) & 0xFF


def sdt(signature: bytes, revision: int, body: bytes) -> bytes:
    """A complete table: header (with length and checksum filled in) + body."""
    table = bytearray(
        struct.pack(
            "<4sIBB6s8sI4sI",
            signature,
            HEADER_SIZE + len(body),
            revision,
            0,
            OEM_ID,
            OEM_TABLE_ID,
            OEM_REVISION,
            CREATOR_ID,
            CREATOR_REVISION,
        )
    )
    table += body
    table[9] = checksum(table)
    return bytes(table)


def rsdp(xsdt_addr: int) -> bytes:
    """ACPI 2.0+ RSDP pointing at the XSDT only (RsdtAddress 0)."""
    data = bytearray(
        struct.pack(
            "<8sB6sBIIQB3x", RSDP_SIGNATURE, 0, OEM_ID, RSDP_REVISION, 0, RSDP_SIZE, xsdt_addr, 0
        )
    )
    data[8] = checksum(data[:RSDP_V1_SIZE])
    data[32] = checksum(data)
    return bytes(data)


def gas(space_id: int, bit_width: int, address: int, access_size: int = 1) -> bytes:
    """Generic Address Structure (12 bytes)."""
    return struct.pack("<BBBBQ", space_id, bit_width, 0, access_size, address)


GAS_SYSTEM_MEMORY = 0
GAS_SYSTEM_IO = 1
