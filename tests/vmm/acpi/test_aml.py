"""AML encodings checked against the byte values in the ACPI specification."""

from __future__ import annotations

import pytest

from vmgui.vmm.acpi import aml


@pytest.mark.parametrize(
    ("body", "encoded"),
    [
        (0, b"\x01"),
        (0x3E, b"\x3f"),
        (0x3F, b"\x41\x04"),  # 0x41 total: two bytes, low nibble 1, then 0x04
        (0xFFD, b"\x4f\xff"),
        (0xFFE, b"\x81\x00\x01"),  # 0x1000 needs three bytes: 0x1001 total
        (0xFFFFC, b"\x8f\xff\xff"),
        (0xFFFFD, b"\xc1\x00\x00\x01"),
    ],
)
def test_pkg_length(body: int, encoded: bytes) -> None:
    assert aml.pkg_length(body) == encoded


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (0x80, b"\x0a\x80"),
        (0x1234, b"\x0b\x34\x12"),
        (0xFEB00000, b"\x0c\x00\x00\xb0\xfe"),
        (1 << 40, b"\x0e" + (1 << 40).to_bytes(8, "little")),
    ],
)
def test_integer(value: int, encoded: bytes) -> None:
    assert aml.integer(value) == encoded


def test_eisa_id() -> None:
    assert aml.eisa_id("PNP0C0C") == b"\x0c\x41\xd0\x0c\x0c"  # DWORD 0x0C0CD041
    assert aml.eisa_id("PNP0501") == b"\x0c\x41\xd0\x05\x01"


def test_names() -> None:
    assert aml.name_string("PWRB") == b"PWRB"
    assert aml.name_string("GED") == b"GED_"
    assert aml.name_string("\\_SB_") == b"\\_SB_"
    assert aml.name_string("\\_SB_.PWRB") == b"\\\x2e_SB_PWRB"
    assert aml.name_string("\\_SB_.GED_.GEVT") == b"\\\x2f\x03_SB_GED_GEVT"
    with pytest.raises(aml.AmlError):
        aml.name_seg("bad!")


def test_terms() -> None:
    assert aml.name("_UID", aml.integer(0)) == b"\x08_UID\x00"
    assert aml.string("ACPI0013") == b"\x0dACPI0013\x00"
    assert aml.device("PWRB") == b"\x5b\x82\x05PWRB"
    assert aml.method("_EVT", 1, serialized=True) == b"\x14\x06_EVT\x09"
    assert aml.package(aml.integer(5), aml.integer(0)) == b"\x12\x05\x02\x0a\x05\x00"
    assert aml.notify("PWRB", 0x80) == b"\x86PWRB\x0a\x80"
    assert aml.field("GREG", aml.FIELD_DWORD_ACC, ("GEVT", 32)) == b"\x5b\x81\x0bGREG\x03GEVT\x20"
