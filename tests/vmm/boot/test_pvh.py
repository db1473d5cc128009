"""PVH ELF loading: segments, hvm_start_info, the 32-bit entry state, and hostile images."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import need_kvm, need_tool
from tests.vmm.boot.elf_images import make_elf, xen_entry_note
from tests.vmm.vmm_process import run_vmm
from vmgui.vmm import layout
from vmgui.vmm.acpi import build_acpi
from vmgui.vmm.boot import BootError, build_e820, detect_kernel, elf, load_pvh
from vmgui.vmm.boot.cpu_state import CR0_PE, CR0_PG
from vmgui.vmm.memory import GuestMemory

MiB = 1 << 20
MEMORY = 32 * MiB
CODE = bytes(range(256)) * 16
ENTRY = 0x100010
MakeMem = Callable[[int], GuestMemory]


def _start_info(mem: GuestMemory) -> tuple[int, ...]:
    return struct.unpack("<IIIIQQQQII", mem.read(layout.PVH_START_INFO, 56))


@pytest.mark.parametrize("elf64", [False, True])
def test_loads_segments_and_start_info(make_mem: MakeMem, elf64: bool) -> None:
    mem = make_mem(MEMORY)
    mem.fill(0x101000, 0x1000, 0xAA)  # bss must come back zeroed
    data = make_elf(
        [(0x100000, CODE, 0x2000), (0x200000, b"DATA", 4)],
        xen_entry_note(ENTRY, 8 if elf64 else 4),
        elf64=elf64,
    )
    assert detect_kernel(data) == "pvh"
    initrd = b"initrd!" * 1000
    state = load_pvh(mem, data, "console=ttyS0", initrd, layout.ACPI_TABLES)

    assert mem.read(0x100000, len(CODE)) == CODE
    assert mem.read(0x100000 + len(CODE), 0x2000 - len(CODE)) == bytes(0x2000 - len(CODE))
    assert mem.read(0x200000, 4) == b"DATA"

    magic, version, flags, nr_mod, modlist, cmdline, rsdp, memmap, n, rsvd = _start_info(mem)
    assert (magic, version, flags, rsvd) == (0x336EC578, 1, 0, 0)
    assert mem.read(cmdline, 14) == b"console=ttyS0\0"
    assert rsdp == layout.ACPI_TABLES
    entries = [struct.unpack("<QQII", mem.read(memmap + 24 * i, 24)) for i in range(n)]
    assert [(a, s, t) for a, s, t, _r in entries] == [
        (e.addr, e.size, e.type) for e in build_e820(mem)
    ]
    assert nr_mod == 1
    paddr, size, mod_cmdline, _ = struct.unpack("<QQQQ", mem.read(modlist, 32))
    assert size == len(initrd) and mod_cmdline == 0
    assert paddr % 4096 == 0 and MEMORY - (paddr + size) < 4096
    assert mem.read(paddr, size) == initrd

    assert state.mode == "protected32"
    assert state.rip == ENTRY
    assert state.rbx == layout.PVH_START_INFO
    assert state.cr0 & CR0_PE and not state.cr0 & CR0_PG
    assert state.efer == 0 and state.cr4 == 0
    assert state.cs.selector == 0x08 and state.cs.db == 1 and state.cs.l == 0
    assert state.cs.base == 0 and state.cs.limit == 0xFFFF_FFFF and state.cs.type == 0xB
    for seg in (state.ds, state.es, state.ss):
        assert seg.selector == 0x18 and seg.db == 1 and seg.limit == 0xFFFF_FFFF
    assert state.tr.s == 0 and state.tr.limit == 0x67
    assert state.rflags == 0x2


def test_no_initrd_means_no_modules(make_mem: MakeMem) -> None:
    mem = make_mem(MEMORY)
    load_pvh(mem, make_elf([(0x100000, CODE, len(CODE))], xen_entry_note(ENTRY)), "")
    _m, _v, _f, nr_mod, modlist, *_ = _start_info(mem)
    assert (nr_mod, modlist) == (0, 0)


def _truncated_phdrs() -> bytes:
    return make_elf([(0x100000, CODE, len(CODE))], xen_entry_note(ENTRY))[:60]


def _many_phdrs() -> bytes:
    data = bytearray(make_elf([(0x100000, CODE, len(CODE))], xen_entry_note(ENTRY)))
    struct.pack_into("<H", data, 44, 0xFFFF)
    return bytes(data)


def _segment_past_file() -> bytes:
    data = bytearray(make_elf([(0x100000, CODE, len(CODE))], xen_entry_note(ENTRY)))
    struct.pack_into("<I", data, 52 + 16, 1 << 30)  # p_filesz of the first PT_LOAD
    struct.pack_into("<I", data, 52 + 20, 1 << 30)
    return bytes(data)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (lambda: make_elf([(0x100000, CODE, len(CODE))], None), "no PVH entry note"),
        (lambda: make_elf([(0x100000, CODE, len(CODE))], b"\x04\0\0\0" * 5), "no PVH entry note"),
        (
            lambda: make_elf([(0xF000_0000, CODE, len(CODE))], xen_entry_note(ENTRY)),
            "outside guest RAM",
        ),
        (
            lambda: make_elf([(0x1F0_0000, CODE, 0x20_0000)], xen_entry_note(ENTRY)),
            "outside guest RAM",
        ),
        (lambda: make_elf([(0x5F00, CODE, len(CODE))], xen_entry_note(ENTRY)),
         "overlaps the VMM's PVH start info and memory map at 0x6000-"),
        (lambda: make_elf([(0x100000, CODE, len(CODE))], xen_entry_note(0x100000 + len(CODE))),
         "PVH entry point 0x101000 is outside the kernel's loaded segments"),
        (lambda: make_elf([(0x100000, CODE, 0x2000)], xen_entry_note(0x101800)),
         "PVH entry point 0x101800 is outside"),  # in the segment, but in its zeroed tail
        (lambda: make_elf([(0x100000, CODE, 16)], xen_entry_note(ENTRY)), "file size larger"),
        (_truncated_phdrs, "truncated"),
        (_many_phdrs, "program headers"),
        (_segment_past_file, "truncated"),
        (lambda: make_elf([(0x100000, CODE, len(CODE))], xen_entry_note(1 << 33, 8)), "32-bit"),
        (lambda: b"\x7fELF" + bytes(20), "not an ELF image"),
    ],
)
def test_hostile_images(make_mem: MakeMem, image: Callable[[], bytes], message: str) -> None:
    mem = make_mem(MEMORY)
    with pytest.raises(BootError, match=message):
        load_pvh(mem, image(), "")


def test_headers_segment_below_1mib_loads_as_qemu_loads_it(make_mem: MakeMem) -> None:
    """What `ld -Ttext=0x100000` produces: the ELF headers in their own segment at 0xff000,
    under the (e820-reserved) BIOS area. QEMU loads it; so do we, next to the ACPI tables."""
    mem = make_mem(MEMORY)
    rsdp = build_acpi(mem, 1)
    data = make_elf([(0xFF000, b"hdrs", 4), (0x100000, CODE, len(CODE))], xen_entry_note(ENTRY))
    state = load_pvh(mem, data, "", rsdp_addr=rsdp)
    assert mem.read(0xFF000, 4) == b"hdrs" and state.rip == ENTRY
    assert mem.read(rsdp, 8) == b"RSD PTR "


def test_a_real_collision_names_the_structure(make_mem: MakeMem) -> None:
    mem = make_mem(MEMORY)
    rsdp = build_acpi(mem, 1)
    cases = [(rsdp + 0x40, r"the VMM's ACPI tables at 0xe0000-0xe0"),
             (layout.MPTABLE, r"the VMM's MP table at 0x9fc00-0xa0000"),
             (layout.CMDLINE, r"the VMM's kernel command line at 0x20000-0x20006"),
             (layout.BOOT_GDT, r"the VMM's boot GDT and IDT")]
    for addr, message in cases:
        data = make_elf([(addr, b"x" * 16, 16), (0x100000, CODE, len(CODE))], xen_entry_note(ENTRY))
        with pytest.raises(BootError, match=rf"segment 0 at {addr:#x}\+0x10 overlaps {message}"):
            load_pvh(mem, data, "hello", rsdp_addr=rsdp)


def test_ttext_linked_guest_boots_like_under_qemu(build_guest: Callable[..., Path]) -> None:
    """A test guest linked with the common -Wl,-Ttext=0x100000 recipe (headers at 0xff000)."""
    need_kvm()
    guest = build_guest("hello", ("-Wl,-Ttext=0x100000",))
    segments = [ph for ph in elf.parse(guest.read_bytes()).phdrs if ph.type == elf.PT_LOAD]
    assert min(ph.paddr for ph in segments) == 0xFF000  # the layout this test is about
    r = run_vmm("--kernel", guest)
    assert r.returncode == 0, r.stderr
    assert b"hello from guest" in r.stdout


def test_detect_refuses_plain_elf() -> None:
    with pytest.raises(BootError, match="no PVH entry note"):
        detect_kernel(make_elf([(0x100000, CODE, len(CODE))], None))


ENTRY_ASM = """
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, 18
    .asciz "Xen"
    .long pvh_start
    .text
    .code32
    .globl pvh_start
pvh_start:
    movl $0x1234, %eax
1:  hlt
    jmp 1b
"""


def test_gcc_built_pvh_guest(make_mem: MakeMem, tmp_path: Path) -> None:
    gcc = need_tool("gcc")
    src, out = tmp_path / "entry.S", tmp_path / "guest.elf"
    src.write_text(ENTRY_ASM)
    subprocess.run(
        [
            gcc,
            "-m32",
            "-nostdlib",
            "-static",
            "-no-pie",
            "-fno-pic",
            "-Wl,--build-id=none",
            "-Wl,-Ttext-segment=0x100000",
            "-Wl,-e,pvh_start",
            "-o",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    data = out.read_bytes()
    assert detect_kernel(data) == "pvh"
    mem = make_mem(MEMORY)
    state = load_pvh(mem, data, "hello")
    assert state.rip == struct.unpack_from("<I", data, 24)[0] >= 0x100000  # e_entry = pvh_start
    assert mem.read(state.rip, 5) == b"\xb8\x34\x12\x00\x00"  # movl $0x1234, %eax


def test_refused_image_leaves_memory_untouched(make_mem: MakeMem) -> None:
    mem = make_mem(MEMORY)
    data = make_elf([(0x100000, CODE, len(CODE)), (0xF000_0000, b"x", 1)], xen_entry_note(ENTRY))
    with pytest.raises(BootError, match="segment 1 .* outside guest RAM"):
        load_pvh(mem, data, "console=ttyS0", b"initrd")
    assert mem.read(0x100000, len(CODE)) == bytes(len(CODE))
    assert mem.read(layout.PVH_START_INFO, 56) == bytes(56)
