"""Synthesized ELF images for the PVH loader tests: small, exact, and easy to corrupt."""

from __future__ import annotations

import struct

PT_LOAD = 1
PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18


def xen_entry_note(entry: int, desc_size: int = 4) -> bytes:
    name = b"Xen\0"
    return (
        struct.pack("<III", len(name), desc_size, XEN_ELFNOTE_PHYS32_ENTRY)
        + name
        + (entry.to_bytes(desc_size, "little"))
    )


def make_elf(
    segments: list[tuple[int, bytes, int]],
    notes: bytes | None,
    *,
    elf64: bool = False,
    entry: int = 0x100000,
) -> bytes:
    """An x86 ET_EXEC image: PT_LOAD per (paddr, data, memsz), then one PT_NOTE with `notes`."""
    ehsize, phentsize = (64, 56) if elf64 else (52, 32)
    phnum = len(segments) + (notes is not None)
    offset = ehsize + phnum * phentsize
    payload = b""
    phdrs = b""
    for paddr, data, memsz in segments:
        phdrs += _phdr(elf64, PT_LOAD, offset + len(payload), paddr, len(data), memsz)
        payload += data
    if notes is not None:
        phdrs += _phdr(elf64, PT_NOTE, offset + len(payload), 0, len(notes), len(notes))
        payload += notes
    ident = b"\x7fELF" + bytes([2 if elf64 else 1, 1, 1]) + bytes(9)
    if elf64:
        header = ident + struct.pack(
            "<HHIQQQIHHHHHH", 2, 62, 1, entry, ehsize, 0, 0, ehsize, phentsize, phnum, 0, 0, 0
        )
    else:
        header = ident + struct.pack(
            "<HHIIIIIHHHHHH", 2, 3, 1, entry, ehsize, 0, 0, ehsize, phentsize, phnum, 0, 0, 0
        )
    return header + phdrs + payload


def _phdr(elf64: bool, p_type: int, offset: int, paddr: int, filesz: int, memsz: int) -> bytes:
    if elf64:
        return struct.pack("<IIQQQQQQ", p_type, 7, offset, paddr, paddr, filesz, memsz, 0x1000)
    return struct.pack("<IIIIIIII", p_type, offset, paddr, paddr, filesz, memsz, 7, 0x1000)
