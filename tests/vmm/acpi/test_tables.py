"""ACPI tables as the guest finds them: RSDP -> XSDT -> FADT/DSDT/MADT, checksums, contents.

iasl (acpica-tools) disassembles them as an independent check, and acpiexec runs the DSDT's
_EVT to prove a power-button event reaches Notify(PWRB, 0x80).
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import need_tool
from vmgui.vmm import layout
from vmgui.vmm.acpi import aml, build_acpi
from vmgui.vmm.acpi import tables as t
from vmgui.vmm.acpi.sdt import sdt
from vmgui.vmm.boot import BootError
from vmgui.vmm.devices.acpi_pm import S5_SLP_TYP, SLP_EN, SLP_TYP_SHIFT
from vmgui.vmm.memory import GuestMemory

NCPUS = 2


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    m = GuestMemory.create(4 << 20)
    yield m
    m.close()


def _tables(mem: GuestMemory, rsdp: int) -> dict[bytes, tuple[int, bytes]]:
    """Follow the pointers like a guest: signature -> (address, bytes)."""
    xsdt_addr = mem.read_u64(rsdp + 24)
    found = {b"XSDT": (xsdt_addr, mem.read(xsdt_addr, mem.read_u32(xsdt_addr + 4)))}
    xsdt = found[b"XSDT"][1]
    for i in range((len(xsdt) - 36) // 8):
        addr = struct.unpack_from("<Q", xsdt, 36 + 8 * i)[0]
        found[mem.read(addr, 4)] = (addr, mem.read(addr, mem.read_u32(addr + 4)))
    fadt = found[b"FACP"][1]
    dsdt_addr = struct.unpack_from("<Q", fadt, 140)[0]
    found[b"DSDT"] = (dsdt_addr, mem.read(dsdt_addr, mem.read_u32(dsdt_addr + 4)))
    return found


def test_rsdp(mem: GuestMemory) -> None:
    rsdp = build_acpi(mem, NCPUS)
    assert rsdp == layout.ACPI_TABLES and rsdp % 16 == 0  # Linux scans 0xE0000-0xFFFFF
    data = mem.read(rsdp, 36)
    assert data[:8] == b"RSD PTR "
    assert sum(data[:20]) % 256 == 0 and sum(data) % 256 == 0
    revision, rsdt, length = struct.unpack_from("<BII", data, 15)
    assert (revision, rsdt, length) == (2, 0, 36)


def test_every_table_checksummed_and_inside_the_acpi_area(mem: GuestMemory) -> None:
    found = _tables(mem, build_acpi(mem, NCPUS))
    assert set(found) == {b"XSDT", b"FACP", b"APIC", b"DSDT"}
    spans = []
    for sig, (addr, data) in found.items():
        assert sum(data) % 256 == 0, sig
        assert addr >= layout.ACPI_TABLES + 36 and addr + len(data) <= layout.ACPI_TABLES_END
        spans.append((addr, addr + len(data)))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_fadt(mem: GuestMemory) -> None:
    fadt = _tables(mem, build_acpi(mem, NCPUS))[b"FACP"][1]
    assert len(fadt) == 276 and fadt[8] == 6  # ACPI 6 FADT
    flags = struct.unpack_from("<I", fadt, 112)[0]
    assert flags & t.FADT_HW_REDUCED_ACPI and flags & t.FADT_RESET_REG_SUP
    assert struct.unpack_from("<H", fadt, 46)[0] == layout.ACPI_GED_IRQ
    boot_arch = struct.unpack_from("<H", fadt, 109)[0]
    assert boot_arch & t.BOOT_8042 and boot_arch & t.BOOT_VGA_NOT_PRESENT
    # GAS: space 1 (System I/O), 8 bits, byte access, port
    assert fadt[116:128] == struct.pack("<BBBBQ", 1, 8, 0, 1, layout.ACPI_RESET_PORT)
    assert fadt[128] == layout.ACPI_RESET_VALUE
    assert fadt[244:256] == struct.pack("<BBBBQ", 1, 8, 0, 1, layout.ACPI_SLEEP_CONTROL)
    assert fadt[256:268] == struct.pack("<BBBBQ", 1, 8, 0, 1, layout.ACPI_SLEEP_STATUS)
    assert struct.unpack_from("<I", fadt, 40)[0] == 0  # 32-bit DSDT unused: X_DSDT only
    assert sum(fadt[56:92]) == 0  # no PM1/GPE blocks in reduced hardware


def test_madt(mem: GuestMemory) -> None:
    madt = _tables(mem, build_acpi(mem, 3))[b"APIC"][1]
    lapic, flags = struct.unpack_from("<II", madt, 36)
    assert lapic == layout.LAPIC_BASE and flags == t.MADT_PCAT_COMPAT
    pos, entries = 44, []
    while pos < len(madt):
        entries.append(madt[pos : pos + madt[pos + 1]])
        pos += madt[pos + 1]
    assert pos == len(madt)
    cpus = [e for e in entries if e[0] == t.MADT_LAPIC]
    assert [(e[2], e[3], struct.unpack_from("<I", e, 4)[0]) for e in cpus] == [
        (0, 0, 1),
        (1, 1, 1),
        (2, 2, 1),
    ]
    (ioapic,) = [e for e in entries if e[0] == t.MADT_IOAPIC]
    assert struct.unpack("<BBBBII", ioapic) == (1, 12, 3, 0, layout.IOAPIC_BASE, 0)
    isos = [struct.unpack("<BBBBIH", e) for e in entries if e[0] == t.MADT_ISO]
    assert isos == [(2, 10, 0, layout.ACPI_GED_IRQ, layout.ACPI_GED_IRQ, 0xD)]  # level, high
    nmis = [e for e in entries if e[0] == t.MADT_LAPIC_NMI]
    assert nmis == [struct.pack("<BBBHB", 4, 6, 0xFF, 0, 1)]


def test_madt_timer_override(mem: GuestMemory) -> None:
    madt = _tables(mem, build_acpi(mem, 1, timer_on_gsi2=True))[b"APIC"][1]
    assert struct.pack("<BBBBIH", 2, 10, 0, 0, 2, 0) in madt


def test_too_many_cpus(mem: GuestMemory) -> None:
    with pytest.raises(BootError, match="1..254 vCPUs, not 255"):
        build_acpi(mem, 255)


def test_dsdt_power_button_ged_and_s5(mem: GuestMemory) -> None:
    dsdt = _tables(mem, build_acpi(mem, NCPUS))[b"DSDT"][1]
    assert aml.eisa_id("PNP0C0C") in dsdt and aml.string("ACPI0013") in dsdt
    s5 = aml.name("\\_S5_", aml.package(*(aml.integer(v) for v in (S5_SLP_TYP, 0, 0, 0))))
    assert s5 in dsdt
    # What Linux writes to the sleep control register for S5, given that package:
    assert SLP_EN | (S5_SLP_TYP << SLP_TYP_SHIFT) == 0x34


def _dump(mem: GuestMemory, tmp_path: Path, **kw: int) -> dict[str, Path]:
    files = {}
    for sig, (_addr, data) in _tables(mem, build_acpi(mem, NCPUS, **kw)).items():
        path = tmp_path / f"{sig.decode().lower()}.dat"
        path.write_bytes(data)
        files[sig.decode()] = path
    return files


def test_iasl_disassembles_every_table(mem: GuestMemory, tmp_path: Path) -> None:
    iasl = need_tool("iasl")
    files = _dump(mem, tmp_path, virtio_devices=2)
    for path in files.values():
        out = subprocess.run([iasl, "-d", str(path)], capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
    dsl = files["DSDT"].with_suffix(".dsl").read_text()
    for needle in (
        'Name (_HID, EisaId ("PNP0C0C")',
        'Name (_HID, "ACPI0013"',
        "Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, )\n"
        "                {\n                    0x00000009,",
        "OperationRegion (GREG, SystemMemory, 0xFEB00000, 0x04)",
        "GEVT,   32",
        "Method (_EVT, 1, Serialized)",
        "Notify (PWRB, 0x80)",
        'EisaId ("PNP0501")',
        'EisaId ("PNP0303")',
        'Name (_HID, "LNRO0005")',
        "Memory32Fixed (ReadWrite,\n                    0xD0001000,",
        "Name (\\_S5, Package (0x04)",
    ):
        assert needle in dsl, needle
    facp = files["FACP"].with_suffix(".dsl").read_text()
    assert "Hardware Reduced (V5) : 1" in facp
    assert "Address : 00000000000003C0" in facp
    apic = files["APIC"].with_suffix(".dsl").read_text()
    assert apic.count("[Processor Local APIC]") == NCPUS


def _acpiexec(acpiexec: str, tmp_path: Path, files: list[Path], command: str) -> str:
    out = subprocess.run(
        [acpiexec, "-b", command, *map(str, files)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_acpiexec_power_button_event_notifies_pwrb(mem: GuestMemory, tmp_path: Path) -> None:
    acpiexec = need_tool("acpiexec")
    dsdt = _dump(mem, tmp_path)["DSDT"]
    # A test-only SSDT latches the power-button bit in the GED register, then runs _EVT.
    press = aml.method(
        "\\PTST",
        0,
        aml.store(aml.integer(1), aml.ref("\\_SB_.GED_.GEVT")),
        aml.ref("\\_SB_.GED_._EVT") + aml.integer(layout.ACPI_GED_IRQ),
    )
    ssdt = tmp_path / "ssdt.dat"
    ssdt.write_bytes(sdt(b"SSDT", 2, press))
    idle = _acpiexec(acpiexec, tmp_path, [dsdt], "evaluate \\_SB.GED._EVT 9")
    assert "Notify" not in idle
    pressed = _acpiexec(acpiexec, tmp_path, [dsdt, ssdt], "evaluate \\PTST")
    assert "Notify on [PWRB]" in pressed and "Value 0x80" in pressed
    s5 = _acpiexec(acpiexec, tmp_path, [dsdt], "evaluate \\_S5_")
    assert "[Integer] = 0000000000000005" in s5
