"""The ACPI fw_cfg files run through a loader that does what SeaBIOS's romfile_loader does."""

from __future__ import annotations

import struct

from vmgui.vmm.firmware import acpi


def run_loader(files: dict[str, bytes], bases: dict[str, int]) -> dict[str, bytearray]:
    """Execute etc/table-loader: files land at `bases` (ALLOCATE), pointers and checksums fixed."""
    placed: dict[str, bytearray] = {}
    script = files[acpi.LOADER_FILE]
    assert len(script) % acpi.COMMAND_SIZE == 0
    for i in range(0, len(script), acpi.COMMAND_SIZE):
        cmd = script[i : i + acpi.COMMAND_SIZE]
        (kind,) = struct.unpack_from("<I", cmd)
        name = cmd[4:60].rstrip(b"\0").decode()
        if kind == acpi.CMD_ALLOCATE:
            align, zone = struct.unpack_from("<IB", cmd, 60)
            assert bases[name] % align == 0
            assert (zone == acpi.ZONE_FSEG) == (name == acpi.RSDP_FILE)
            placed[name] = bytearray(files[name])
        elif kind == acpi.CMD_ADD_POINTER:
            src = cmd[60:116].rstrip(b"\0").decode()
            offset, size = struct.unpack_from("<IB", cmd, 116)
            data = placed[name]
            value = int.from_bytes(data[offset : offset + size], "little") + bases[src]
            data[offset : offset + size] = value.to_bytes(size, "little")
        elif kind == acpi.CMD_ADD_CHECKSUM:
            offset, start, length = struct.unpack_from("<III", cmd, 60)
            data = placed[name]
            data[offset] = (data[offset] - sum(data[start : start + length])) & 0xFF
        else:
            raise AssertionError(f"unknown loader command {kind}")
    return placed


def table_at(placed: dict[str, bytearray], bases: dict[str, int], addr: int) -> bytes:
    blob = placed[acpi.TABLES_FILE]
    off = addr - bases[acpi.TABLES_FILE]
    (length,) = struct.unpack_from("<I", blob, off + 4)
    return bytes(blob[off : off + length])


def test_loader_places_rsdp_xsdt_fadt_dsdt_with_valid_checksums() -> None:
    files = acpi.build_acpi_files(ncpus=2, virtio_devices=3)
    bases = {acpi.RSDP_FILE: 0xF5A40, acpi.TABLES_FILE: 0x0FFF_0000}
    placed = run_loader(files, bases)
    rsdp = bytes(placed[acpi.RSDP_FILE])
    assert rsdp[:8] == b"RSD PTR " and sum(rsdp[:20]) % 256 == 0 and sum(rsdp) % 256 == 0
    (xsdt_addr,) = struct.unpack_from("<Q", rsdp, 24)
    xsdt = table_at(placed, bases, xsdt_addr)
    assert xsdt[:4] == b"XSDT" and sum(xsdt) % 256 == 0
    entries = [struct.unpack_from("<Q", xsdt, 36 + 8 * i)[0] for i in range((len(xsdt) - 36) // 8)]
    tables = {table_at(placed, bases, a)[:4]: table_at(placed, bases, a) for a in entries}
    assert set(tables) == {b"FACP", b"APIC"}
    assert all(sum(t) % 256 == 0 for t in tables.values())
    fadt = tables[b"FACP"]
    dsdt32, dsdt64 = struct.unpack_from("<I", fadt, 40)[0], struct.unpack_from("<Q", fadt, 140)[0]
    assert dsdt32 == dsdt64  # SeaBIOS reads the 32-bit field, Linux the 64-bit one
    dsdt = table_at(placed, bases, dsdt32)
    assert dsdt[:4] == b"DSDT" and sum(dsdt) % 256 == 0
    assert dsdt.count(b"LNRO0005") == 3
