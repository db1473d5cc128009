"""ACPI resource descriptors for _CRS buffers (ACPI 6.5 section 6.4)."""

from __future__ import annotations

import struct

_IO_DESCRIPTOR = 0x47  # small, length 7
_IRQ_NO_FLAGS = 0x22  # small, length 2
_END_TAG = 0x79  # small, length 1
_MEMORY32_FIXED = 0x86  # large
_EXTENDED_INTERRUPT = 0x89  # large

# Extended interrupt flag bits
CONSUMER = 1 << 0
EDGE = 1 << 1  # clear: level
ACTIVE_LOW = 1 << 2  # clear: active high
SHARED = 1 << 3  # clear: exclusive


def io(base: int, length: int) -> bytes:
    """IO(Decode16, base, base, 1, length)."""
    return struct.pack("<BBHHBB", _IO_DESCRIPTOR, 1, base, base, 1, length)


def irq_no_flags(irq: int) -> bytes:
    """IRQNoFlags() {irq}: an ISA interrupt, edge / active high."""
    if not 0 <= irq < 16:
        raise ValueError(f"ISA IRQ {irq} out of range")
    return struct.pack("<BH", _IRQ_NO_FLAGS, 1 << irq)


def memory32_fixed(base: int, length: int, writable: bool = True) -> bytes:
    return struct.pack("<BHBII", _MEMORY32_FIXED, 9, int(writable), base, length)


def interrupt(gsi: int, *, level: bool, active_low: bool = False) -> bytes:
    """Interrupt(ResourceConsumer, Level|Edge, ActiveHigh|Low, Exclusive) {gsi}."""
    flags = CONSUMER | (0 if level else EDGE) | (ACTIVE_LOW if active_low else 0)
    return struct.pack("<BHBBI", _EXTENDED_INTERRUPT, 6, flags, 1, gsi)


def template(*descriptors: bytes) -> bytes:
    """ResourceTemplate(): the descriptors plus an end tag whose checksum 0 means 'not checked'."""
    return b"".join(descriptors) + bytes([_END_TAG, 0])
