"""A bounds-checked reader for the parts of ELF32/ELF64 x86 images a PVH loader needs.

Every offset and size comes from the file, so each is checked against the file length before use;
a hostile image gets a BootError, never an IndexError or a huge allocation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.record import record

ELF_MAGIC = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_EXEC = 2
EM_386 = 3
EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4
#: Refuse images with more program headers than any sane kernel has.
MAX_PHDRS = 256
_NOTE_HEADER = 12


@record(frozen=True)
class ProgramHeader:
    type: int
    offset: int
    paddr: int
    filesz: int
    memsz: int


@record(frozen=True)
class Note:
    name: bytes
    type: int
    desc: bytes


@record(frozen=True)
class ElfImage:
    elf_class: int
    entry: int
    phdrs: tuple[ProgramHeader, ...]


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def parse(data: bytes) -> ElfImage:
    """Parse the ELF and program headers of `data`; BootError on anything malformed."""
    if len(data) < 52 or not is_elf(data):
        raise BootError("kernel is not an ELF image (bad magic or too short)")
    elf_class, byte_order = data[4], data[5]
    if byte_order != ELFDATA2LSB:
        raise BootError("ELF kernel is not little-endian")
    if elf_class == ELFCLASS32:
        e_type, machine, _v, entry, phoff, _sh, _fl, _eh, phentsize, phnum = struct.unpack_from(
            "<HHIIIIIHHH", data, 16
        )
        want_machine, ph_fmt = EM_386, "<IIIIIIII"
    elif elf_class == ELFCLASS64:
        if len(data) < 64:
            raise BootError("ELF kernel is truncated (ELF64 header cut off)")
        e_type, machine, _v, entry, phoff, _sh, _fl, _eh, phentsize, phnum = struct.unpack_from(
            "<HHIQQQIHHH", data, 16
        )
        want_machine, ph_fmt = EM_X86_64, "<IIQQQQQQ"
    else:
        raise BootError(f"ELF kernel has an unknown class {elf_class}")
    if machine != want_machine:
        raise BootError(f"ELF kernel is for machine {machine}, not x86")
    if e_type != ET_EXEC:
        raise BootError(f"ELF kernel is not an executable (e_type {e_type})")
    ph_size = struct.calcsize(ph_fmt)
    if phnum == 0 or phnum > MAX_PHDRS:
        raise BootError(f"ELF kernel has {phnum} program headers (1..{MAX_PHDRS} allowed)")
    if phentsize < ph_size or phoff + phnum * phentsize > len(data):
        raise BootError("ELF kernel is truncated: program headers lie outside the file")
    phdrs = []
    for i in range(phnum):
        f = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
        if elf_class == ELFCLASS32:
            p_type, offset, _va, paddr, filesz, memsz = f[0], f[1], f[2], f[3], f[4], f[5]
        else:
            p_type, offset, _va, paddr, filesz, memsz = f[0], f[2], f[3], f[4], f[5], f[6]
        if p_type in (PT_LOAD, PT_NOTE) and offset + filesz > len(data):
            raise BootError(f"ELF kernel is truncated: segment {i} lies outside the file")
        if p_type == PT_LOAD and filesz > memsz:
            raise BootError(f"ELF segment {i} has file size larger than memory size")
        phdrs.append(ProgramHeader(p_type, offset, paddr, filesz, memsz))
    return ElfImage(elf_class, entry, tuple(phdrs))


def notes(data: bytes, image: ElfImage) -> Iterator[Note]:
    """Every note in the PT_NOTE segments; stops at the first malformed one in a segment."""
    for ph in image.phdrs:
        if ph.type != PT_NOTE:
            continue
        pos, end = ph.offset, ph.offset + ph.filesz
        while pos + _NOTE_HEADER <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name_at = pos + _NOTE_HEADER
            desc_at = name_at + _align4(namesz)
            next_at = desc_at + _align4(descsz)
            if next_at > end:
                break
            yield Note(
                data[name_at : name_at + namesz].rstrip(b"\0"),
                ntype,
                data[desc_at : desc_at + descsz],
            )
            pos = next_at


def _align4(n: int) -> int:
    return (n + 3) & ~3
