"""PVH loader: an ELF kernel entered in 32-bit protected mode with %ebx -> hvm_start_info.

The entry point comes from the XEN_ELFNOTE_PHYS32_ENTRY note (name "Xen", type 18), not e_entry.
hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h, version 1) sits at
layout.PVH_START_INFO with its module list and memory map right after it:

    +0x00 hvm_start_info (56 bytes)   +0x40 hvm_modlist_entry[1] (32 bytes, the initrd)
    +0x60 hvm_memmap_table_entry[]    (24 bytes each, e820 types)

Segments load where the ELF says, as QEMU's -kernel does: also below 1 MiB (the common
`-Wl,-Ttext=0x100000` link puts the ELF headers in a PT_LOAD at 0xff000). Only a real overlap
with a structure the VMM put there (GDT, start info, command line, MP table, ACPI tables) is
refused, naming it. The entry point must lie in a segment's file contents.
"""

from __future__ import annotations

import struct

from vmgui.vmm import layout
from vmgui.vmm.boot import elf, gdt
from vmgui.vmm.boot.cpu_state import CR0_ET, CR0_PE, CpuState
from vmgui.vmm.boot.e820 import build_e820
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.boot.placement import encode_cmdline, place_initrd, ram_top_below_4g
from vmgui.vmm.memory import GuestMemory

XEN_ELFNOTE_PHYS32_ENTRY = 18
XEN_NOTE_NAME = b"Xen"
HVM_START_MAGIC = 0x336EC578
HVM_START_VERSION = 1
START_INFO = layout.PVH_START_INFO
MODLIST = START_INFO + 0x40
MEMMAP = START_INFO + 0x60
MEMMAP_MAX_ENTRIES = (layout.ZERO_PAGE - MEMMAP) // 24
_START_INFO_FMT = "<IIIIQQQQII"  # magic version flags nr_modules modlist cmdline rsdp memmap n rsvd
_4G = 1 << 32


def pvh_entry(data: bytes, image: elf.ElfImage) -> int:
    """The 32-bit entry address from the PVH note; BootError if the ELF has none."""
    for note in elf.notes(data, image):
        if note.name == XEN_NOTE_NAME and note.type == XEN_ELFNOTE_PHYS32_ENTRY:
            if len(note.desc) not in (4, 8):
                raise BootError(f"PVH entry note has a {len(note.desc)}-byte address")
            entry = int.from_bytes(note.desc, "little")
            if entry >= _4G:
                raise BootError(f"PVH entry {entry:#x} is not a 32-bit address")
            return entry
    raise BootError(
        "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); not a bzImage or PVH ELF"
    )


def boot_structures(mem: GuestMemory, cmd: bytes, e820_entries: int,
                    rsdp_addr: int | None) -> list[tuple[str, int, int]]:
    """(name, start, end) of every structure the VMM places below 1 MiB for a PVH guest."""
    used = [
        ("boot GDT and IDT", layout.BOOT_GDT, layout.BOOT_IDT + 8),
        ("PVH start info and memory map", START_INFO, MEMMAP + 24 * e820_entries),
        ("kernel command line", layout.CMDLINE, layout.CMDLINE + len(cmd)),
        ("MP table", layout.MPTABLE, layout.BIOS_AREA_START),
    ]
    if rsdp_addr is not None:
        from vmgui.vmm.acpi import tables_end  # noqa: PLC0415 - acpi imports boot: a cycle

        used.append(("ACPI tables", rsdp_addr, tables_end(mem, rsdp_addr)))
    return used


def _check_segments(image: elf.ElfImage, top: int,
                    used: list[tuple[str, int, int]]) -> list[elf.ProgramHeader]:
    """The PT_LOAD segments to copy, all in RAM below `top` and clear of `used`; BootError
    naming the collision otherwise."""
    loads = []
    for i, ph in enumerate(image.phdrs):
        if ph.type != elf.PT_LOAD or ph.memsz == 0:
            continue
        end = ph.paddr + ph.memsz
        if end > top:
            raise BootError(
                f"ELF segment {i} at {ph.paddr:#x}+{ph.memsz:#x} is outside guest RAM "
                f"(RAM for the kernel ends at {top:#x})"
            )
        for name, start, stop in used:
            if ph.paddr < stop and start < end:
                raise BootError(
                    f"ELF segment {i} at {ph.paddr:#x}+{ph.memsz:#x} overlaps the VMM's {name} "
                    f"at {start:#x}-{stop:#x} (link the kernel at {layout.HIMEM_START:#x} or above)"
                )
        loads.append(ph)
    return loads


def _check_entry(entry: int, segments: list[elf.ProgramHeader]) -> None:
    if not any(ph.paddr <= entry < ph.paddr + ph.filesz for ph in segments):
        raise BootError(f"PVH entry point {entry:#x} is outside the kernel's loaded segments")


def load_pvh(
    mem: GuestMemory,
    kernel: bytes,
    cmdline: str,
    initrd: bytes | None = None,
    rsdp_addr: int | None = None,
) -> CpuState:
    """Load a PVH ELF and hvm_start_info into `mem`; return the 32-bit entry state."""
    image = elf.parse(kernel)
    entry = pvh_entry(kernel, image)
    e820 = build_e820(mem)
    if len(e820) > MEMMAP_MAX_ENTRIES:
        raise BootError(
            f"memory map has {len(e820)} entries, PVH start info holds {MEMMAP_MAX_ENTRIES}"
        )
    top = ram_top_below_4g(e820)
    cmd = encode_cmdline(cmdline)
    segments = _check_segments(image, top, boot_structures(mem, cmd, len(e820), rsdp_addr))
    _check_entry(entry, segments)
    kernel_end = max([layout.HIMEM_START] + [ph.paddr + ph.memsz for ph in segments])
    initrd_addr = place_initrd(len(initrd), kernel_end, top) if initrd else 0

    # Everything is validated; only now is guest memory touched.
    for ph in segments:
        mem.write(ph.paddr, memoryview(kernel)[ph.offset : ph.offset + ph.filesz])
        mem.fill(ph.paddr + ph.filesz, ph.memsz - ph.filesz)
    mem.write(layout.CMDLINE, cmd)
    mem.fill(START_INFO, layout.ZERO_PAGE - START_INFO)
    nr_modules = 0
    if initrd:
        mem.write(initrd_addr, initrd)
        mem.write(MODLIST, struct.pack("<QQQQ", initrd_addr, len(initrd), 0, 0))
        nr_modules = 1
    memmap = b"".join(struct.pack("<QQII", e.addr, e.size, e.type, 0) for e in e820)
    mem.write(MEMMAP, memmap)
    mem.write(
        START_INFO,
        struct.pack(
            _START_INFO_FMT,
            HVM_START_MAGIC,
            HVM_START_VERSION,
            0,
            nr_modules,
            MODLIST if nr_modules else 0,
            layout.CMDLINE,
            rsdp_addr or 0,
            MEMMAP,
            len(e820),
            0,
        ),
    )
    gdt_reg, idt_reg = gdt.write_gdt(mem)
    data_seg = gdt.segment(gdt.DATA_SELECTOR)
    return CpuState(
        mode="protected32",
        rip=entry,
        rsp=layout.BOOT_STACK,
        rbx=START_INFO,
        cr0=CR0_PE | CR0_ET,
        cs=gdt.segment(gdt.CODE32_SELECTOR),
        ds=data_seg,
        es=data_seg,
        fs=data_seg,
        gs=data_seg,
        ss=data_seg,
        tr=gdt.segment(gdt.TSS_SELECTOR),
        gdt=gdt_reg,
        idt=idt_reg,
    )
