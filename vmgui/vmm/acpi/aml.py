"""A small ACPI Machine Language encoder: just the terms our DSDT uses (ACPI 6.5, chapter 20).

Each function returns the encoded bytes of one term, so a DSDT reads like its ASL:

    scope("\\_SB_", device("PWRB", name("_HID", eisa_id("PNP0C0C"))))
"""

from __future__ import annotations

import struct

# Opcodes (ACPI 6.5 section 20.2)
ZERO_OP = 0x00
ONE_OP = 0x01
ONES_OP = 0xFF
NAME_OP = 0x08
BYTE_PREFIX = 0x0A
WORD_PREFIX = 0x0B
DWORD_PREFIX = 0x0C
STRING_PREFIX = 0x0D
QWORD_PREFIX = 0x0E
SCOPE_OP = 0x10
BUFFER_OP = 0x11
PACKAGE_OP = 0x12
METHOD_OP = 0x14
DUAL_NAME_PREFIX = 0x2E
MULTI_NAME_PREFIX = 0x2F
ROOT_CHAR = 0x5C
PARENT_PREFIX = 0x5E
EXT_OP_PREFIX = 0x5B
OPREGION_OP = 0x80  # after EXT_OP_PREFIX
FIELD_OP = 0x81  # after EXT_OP_PREFIX
DEVICE_OP = 0x82  # after EXT_OP_PREFIX
LOCAL0_OP = 0x60
ARG0_OP = 0x68
STORE_OP = 0x70
AND_OP = 0x7B
NOTIFY_OP = 0x86
IF_OP = 0xA0
RETURN_OP = 0xA4
NULL_NAME = 0x00

# OperationRegion spaces and Field flags
SYSTEM_MEMORY = 0x00
SYSTEM_IO = 0x01
FIELD_DWORD_ACC = 0x03
FIELD_NO_LOCK = 0x00
FIELD_PRESERVE = 0x00


class AmlError(ValueError):
    """A value the encoder cannot represent (a programming error, not guest input)."""


def _encode_pkg_value(value: int) -> bytes:
    """The PkgLength byte encoding of `value` itself (1 to 4 bytes)."""
    if value <= 0x3F:
        return bytes([value])
    for extra in (1, 2, 3):
        if value < 1 << (4 + 8 * extra):
            lead = (extra << 6) | (value & 0x0F)
            return bytes([lead]) + (value >> 4).to_bytes(extra, "little")
    raise AmlError(f"AML length {value} too large")


def pkg_length(body_len: int) -> bytes:
    """PkgLength for a body of `body_len` bytes; the encoded length counts itself too."""
    for size in (1, 2, 3, 4):
        encoded = _encode_pkg_value(body_len + size)
        if len(encoded) == size:
            return encoded
    raise AmlError(f"AML package too long ({body_len} bytes)")


def name_seg(seg: str) -> bytes:
    if not 1 <= len(seg) <= 4 or not (seg[0].isupper() or seg[0] == "_"):
        raise AmlError(f"bad AML name segment {seg!r}")
    if not all(c.isupper() or c.isdigit() or c == "_" for c in seg):
        raise AmlError(f"bad AML name segment {seg!r}")
    return seg.ljust(4, "_").encode()


def name_string(path: str) -> bytes:
    """Encode a path such as "\\_SB_.PWRB", "^FOO" or "PWRB" as a NameString."""
    prefix = b""
    while path.startswith(("\\", "^")):
        prefix += bytes([ROOT_CHAR if path[0] == "\\" else PARENT_PREFIX])
        path = path[1:]
    segs = [name_seg(s) for s in path.split(".")] if path else []
    if not segs:
        return prefix + bytes([NULL_NAME])
    if len(segs) == 1:
        return prefix + segs[0]
    if len(segs) == 2:
        return prefix + bytes([DUAL_NAME_PREFIX]) + b"".join(segs)
    return prefix + bytes([MULTI_NAME_PREFIX, len(segs)]) + b"".join(segs)


def integer(value: int) -> bytes:
    """The shortest integer encoding (Zero/One/Ones or a prefixed constant)."""
    if value < 0 or value >= 1 << 64:
        raise AmlError(f"AML integer {value} out of range")
    if value == 0:
        return bytes([ZERO_OP])
    if value == 1:
        return bytes([ONE_OP])
    if value <= 0xFF:
        return bytes([BYTE_PREFIX, value])
    if value <= 0xFFFF:
        return bytes([WORD_PREFIX]) + struct.pack("<H", value)
    if value <= 0xFFFF_FFFF:
        return bytes([DWORD_PREFIX]) + struct.pack("<I", value)
    return bytes([QWORD_PREFIX]) + struct.pack("<Q", value)


def string(text: str) -> bytes:
    raw = text.encode("ascii")
    if b"\0" in raw:
        raise AmlError("AML strings cannot contain NUL")
    return bytes([STRING_PREFIX]) + raw + b"\0"


def eisa_id(text: str) -> bytes:
    """EISAID("PNP0C0C"): three letters and four hex digits packed into a DWORD constant."""
    if len(text) != 7 or not text[:3].isalpha() or not text[:3].isupper():
        raise AmlError(f"bad EISA id {text!r}")
    letters = ((ord(text[0]) & 0x1F) << 10) | ((ord(text[1]) & 0x1F) << 5) | (ord(text[2]) & 0x1F)
    value = (letters << 16) | int(text[3:], 16)
    return bytes([DWORD_PREFIX]) + value.to_bytes(4, "big")


def name(path: str, value: bytes) -> bytes:
    return bytes([NAME_OP]) + name_string(path) + value


def scope(path: str, *terms: bytes) -> bytes:
    body = name_string(path) + b"".join(terms)
    return bytes([SCOPE_OP]) + pkg_length(len(body)) + body


def device(path: str, *terms: bytes) -> bytes:
    body = name_string(path) + b"".join(terms)
    return bytes([EXT_OP_PREFIX, DEVICE_OP]) + pkg_length(len(body)) + body


def method(path: str, nargs: int, *terms: bytes, serialized: bool = False) -> bytes:
    if not 0 <= nargs <= 7:
        raise AmlError("AML methods take 0..7 arguments")
    flags = nargs | (0x08 if serialized else 0)
    body = name_string(path) + bytes([flags]) + b"".join(terms)
    return bytes([METHOD_OP]) + pkg_length(len(body)) + body


def buffer(data: bytes) -> bytes:
    body = integer(len(data)) + data
    return bytes([BUFFER_OP]) + pkg_length(len(body)) + body


def package(*elements: bytes) -> bytes:
    if len(elements) > 0xFF:
        raise AmlError("AML package has more than 255 elements")
    body = bytes([len(elements)]) + b"".join(elements)
    return bytes([PACKAGE_OP]) + pkg_length(len(body)) + body


def return_(value: bytes) -> bytes:
    return bytes([RETURN_OP]) + value


def notify(path: str, value: int) -> bytes:
    return bytes([NOTIFY_OP]) + name_string(path) + integer(value)


def store(source: bytes, target: bytes) -> bytes:
    return bytes([STORE_OP]) + source + target


def and_(a: bytes, b: bytes) -> bytes:
    """And(a, b) with no target: the result is only used as a value."""
    return bytes([AND_OP]) + a + b + bytes([NULL_NAME])


def if_(predicate: bytes, *terms: bytes) -> bytes:
    body = predicate + b"".join(terms)
    return bytes([IF_OP]) + pkg_length(len(body)) + body


def local(n: int) -> bytes:
    if not 0 <= n <= 7:
        raise AmlError("AML has Local0..Local7")
    return bytes([LOCAL0_OP + n])


def arg(n: int) -> bytes:
    if not 0 <= n <= 6:
        raise AmlError("AML has Arg0..Arg6")
    return bytes([ARG0_OP + n])


def ref(path: str) -> bytes:
    """A name used as a value (e.g. a field read)."""
    return name_string(path)


def operation_region(path: str, space: int, offset: int, length: int) -> bytes:
    return (
        bytes([EXT_OP_PREFIX, OPREGION_OP])
        + name_string(path)
        + bytes([space])
        + integer(offset)
        + integer(length)
    )


def field(region: str, flags: int, *units: tuple[str, int]) -> bytes:
    """Field(region, flags) { NAME, bits, ... } with named fields only."""
    body = name_string(region) + bytes([flags])
    for unit_name, bits in units:
        if bits <= 0:
            raise AmlError(f"field {unit_name} needs a positive bit width")
        body += name_seg(unit_name) + _encode_pkg_value(bits)
    return bytes([EXT_OP_PREFIX, FIELD_OP]) + pkg_length(len(body)) + body
