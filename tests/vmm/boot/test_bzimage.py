"""The 64-bit boot protocol, checked field by field on the real Debian bzImage."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from vmgui.vmm import layout
from vmgui.vmm.boot import BootError, CpuState, ScreenInfo, detect_kernel, load_bzimage
from vmgui.vmm.boot import bzimage as bz
from vmgui.vmm.boot.cpu_state import CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME
from vmgui.vmm.memory import GuestMemory

MiB = 1 << 20
MEMORY = 256 * MiB
CMDLINE = "console=ttyS0 root=/dev/vda quiet"
FB = ScreenInfo(layout.FRAMEBUFFER_BASE, 1024, 768)
RSDP = layout.ACPI_TABLES
MakeMem = Callable[[int], GuestMemory]


def _u(mem: GuestMemory, off: int, fmt: str) -> int:
    return int(struct.unpack_from(fmt, mem.read(layout.ZERO_PAGE + off, struct.calcsize(fmt)))[0])


def _img(kernel: bytes, off: int, fmt: str) -> int:
    return int(struct.unpack_from(fmt, kernel, off)[0])


@pytest.fixture
def booted(make_mem: MakeMem, debian_kernel: bytes) -> tuple[GuestMemory, CpuState, bytes, bytes]:
    mem = make_mem(MEMORY)
    initrd = bytes(range(256)) * 4099  # not a multiple of 4 KiB, recognisable content
    state = load_bzimage(mem, debian_kernel, CMDLINE, initrd, FB, RSDP)
    return mem, state, debian_kernel, initrd


def test_detects_the_debian_kernel_as_bzimage(debian_kernel: bytes) -> None:
    assert detect_kernel(debian_kernel) == "bzimage"


def test_setup_header_is_copied_and_loader_fields_set(booted: tuple) -> None:
    mem, _state, kernel, _initrd = booted
    hdr_end = 0x202 + kernel[0x201]
    zp = mem.read(layout.ZERO_PAGE, 0x1000)
    changed = {bz.OFF_TYPE_OF_LOADER, bz.OFF_LOADFLAGS}
    changed |= set(range(bz.OFF_CODE32_START, bz.OFF_CODE32_START + 4))
    changed |= set(range(bz.OFF_RAMDISK_IMAGE, bz.OFF_RAMDISK_SIZE + 4))
    changed |= set(range(bz.OFF_HEAP_END_PTR, bz.OFF_HEAP_END_PTR + 2))
    changed |= set(range(bz.OFF_CMD_LINE_PTR, bz.OFF_CMD_LINE_PTR + 4))
    for off in range(0x1F1, hdr_end):
        if off not in changed:
            assert zp[off] == kernel[off], f"setup header byte {off:#x} not copied"
    assert zp[0x202:0x206] == b"HdrS"
    assert zp[bz.OFF_TYPE_OF_LOADER] == 0xFF
    assert zp[bz.OFF_LOADFLAGS] & (bz.LOADED_HIGH | bz.CAN_USE_HEAP) == 0x81
    assert _u(mem, bz.OFF_HEAP_END_PTR, "<H") == 0xDE00
    assert _u(mem, bz.OFF_CODE32_START, "<I") == _img(kernel, bz.OFF_PREF_ADDRESS, "<Q")


def test_command_line(booted: tuple) -> None:
    mem, _state, kernel, _initrd = booted
    assert _u(mem, bz.OFF_CMD_LINE_PTR, "<I") == layout.CMDLINE
    assert _u(mem, bz.BP_EXT_CMD_LINE_PTR, "<I") == 0
    raw = mem.read(layout.CMDLINE, len(CMDLINE) + 1)
    assert raw == CMDLINE.encode() + b"\0"


def test_e820_map_in_the_zero_page(booted: tuple) -> None:
    mem, *_ = booted
    n = mem.read_u8(layout.ZERO_PAGE + bz.BP_E820_ENTRIES)
    table = mem.read(layout.ZERO_PAGE + bz.BP_E820_TABLE, 20 * n)
    entries = [struct.unpack_from("<QQI", table, 20 * i) for i in range(n)]
    assert entries == [
        (0, layout.EBDA_START, 1),
        (layout.EBDA_START, layout.HIMEM_START - layout.EBDA_START, 2),
        (layout.HIMEM_START, MEMORY - layout.HIMEM_START, 1),
    ]


def test_protected_mode_kernel_loaded_at_pref_address(booted: tuple) -> None:
    mem, state, kernel, _initrd = booted
    setup_sects = kernel[0x1F1] or 4
    payload = kernel[(setup_sects + 1) * 512 :]
    load = _img(kernel, bz.OFF_PREF_ADDRESS, "<Q")
    assert load % _img(kernel, bz.OFF_KERNEL_ALIGNMENT, "<I") == 0
    assert mem.read(load, len(payload)) == payload
    assert state.rip == load + 0x200


def test_initrd_at_top_of_low_ram_aligned(booted: tuple) -> None:
    mem, _state, kernel, initrd = booted
    addr = _u(mem, bz.OFF_RAMDISK_IMAGE, "<I") | _u(mem, bz.BP_EXT_RAMDISK_IMAGE, "<I") << 32
    size = _u(mem, bz.OFF_RAMDISK_SIZE, "<I") | _u(mem, bz.BP_EXT_RAMDISK_SIZE, "<I") << 32
    assert size == len(initrd)
    assert addr % 4096 == 0
    assert addr + size <= MEMORY and MEMORY - (addr + size) < 4096
    assert addr + size <= _img(kernel, bz.OFF_INITRD_ADDR_MAX, "<I") + 1
    kernel_end = _img(kernel, bz.OFF_PREF_ADDRESS, "<Q") + _img(kernel, bz.OFF_INIT_SIZE, "<I")
    assert addr >= kernel_end
    assert mem.read(addr, size) == initrd


def test_screen_info_describes_the_framebuffer(booted: tuple) -> None:
    mem, *_ = booted
    si = mem.read(layout.ZERO_PAGE, 0x40)
    assert si[0x0F] == 0x23  # VIDEO_TYPE_VLFB
    width, height, depth, base, size = struct.unpack_from("<HHHII", si, 0x12)
    assert (width, height, depth, base) == (1024, 768, 32, layout.FRAMEBUFFER_BASE)
    assert size == 1024 * 768 * 4 // 65536  # 64 KiB units
    assert struct.unpack_from("<H", si, 0x24)[0] == 4096
    assert tuple(si[0x26:0x2E]) == (8, 16, 8, 8, 8, 0, 8, 24)  # x8r8g8b8
    caps, ext_base = struct.unpack_from("<II", si, 0x36)
    assert caps & 2 == 0 and ext_base == 0


def test_screen_info_64bit_base() -> None:
    from vmgui.vmm.boot.screen_info import encode_screen_info

    si = encode_screen_info(ScreenInfo(0x1_2345_0000, 800, 600, 3328))
    assert struct.unpack_from("<I", si, 0x18)[0] == 0x2345_0000
    caps, ext_base = struct.unpack_from("<II", si, 0x36)
    assert caps & 2 and ext_base == 1
    assert struct.unpack_from("<H", si, 0x24)[0] == 3328
    assert struct.unpack_from("<I", si, 0x1C)[0] == (3328 * 600 + 65535) // 65536


def test_acpi_rsdp_address(booted: tuple) -> None:
    mem, *_ = booted
    assert _u(mem, bz.BP_ACPI_RSDP_ADDR, "<Q") == RSDP


def _walk(mem: GuestMemory, cr3: int, va: int) -> int | None:
    """Translate `va` through 4-level paging; None when not mapped."""
    table = cr3 & ~0xFFF
    for level, shift in enumerate((39, 30, 21, 12)):
        entry = mem.read_u64(table + 8 * ((va >> shift) & 511))
        if not entry & 1:
            return None
        frame = entry & 0x000F_FFFF_FFFF_F000
        if level in (1, 2) and entry & 0x80:  # 1 GiB or 2 MiB page
            return (frame & ~((1 << shift) - 1)) | (va & ((1 << shift) - 1))
        table = frame
    return table | (va & 0xFFF)


def test_page_tables_identity_map_4g(booted: tuple) -> None:
    mem, state, kernel, _initrd = booted
    assert state.cr3 == layout.PML4
    load = _img(kernel, bz.OFF_PREF_ADDRESS, "<Q")
    samples = [0, layout.ZERO_PAGE, layout.CMDLINE, load, load + 0x200, MEMORY - 1]
    samples += [layout.FRAMEBUFFER_BASE, layout.IOAPIC_BASE, 0xFFFF_FFFF]
    samples += [i * 0x0123_4567 & 0xFFFF_FFFF for i in range(1, 64)]
    for va in samples:
        assert _walk(mem, state.cr3, va) == va, hex(va)
    assert _walk(mem, state.cr3, 1 << 32) is None


def test_gdt_has_linux_boot_selectors(booted: tuple) -> None:
    mem, state, *_ = booted
    assert state.gdt.base == layout.BOOT_GDT
    gdt = [mem.read_u64(layout.BOOT_GDT + 8 * i) for i in range((state.gdt.limit + 1) // 8)]
    assert gdt[0] == 0
    code, data = gdt[0x10 >> 3], gdt[0x18 >> 3]
    for d in (code, data):
        assert d & 0xFFFF == 0xFFFF and (d >> 48) & 0xF == 0xF  # limit 0xFFFFF
        assert (d >> 16) & 0xFFFFFF == 0 and d >> 56 == 0  # base 0
        assert (d >> 47) & 1 and (d >> 55) & 1  # present, 4 KiB granularity
    assert (code >> 40) & 0xF == 0xB and (code >> 53) & 1 and not (code >> 54) & 1  # L, !D
    assert (data >> 40) & 0xF == 0x3


def test_cpu_state_for_64bit_entry(booted: tuple) -> None:
    _mem, state, *_ = booted
    assert state.mode == "long64"
    assert state.rsi == layout.ZERO_PAGE
    assert state.cr0 & (CR0_PE | CR0_PG) == CR0_PE | CR0_PG
    assert state.cr4 & CR4_PAE
    assert state.efer & (EFER_LME | EFER_LMA) == EFER_LME | EFER_LMA
    assert state.cs.selector == 0x10 and state.cs.l == 1 and state.cs.db == 0
    for seg in (state.ds, state.es, state.ss):
        assert seg.selector == 0x18 and seg.base == 0 and seg.limit == 0xFFFF_FFFF
    assert state.rflags & 0x200 == 0  # interrupts off


# ---- bad input: one clear message each


def _patched(kernel: bytes, off: int, data: bytes) -> bytes:
    return kernel[:off] + data + kernel[off + len(data) :]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda k: k[: len(k) // 2], "truncated"),
        (lambda k: k[:0x300], "truncated"),
        (lambda k: _patched(k, 0x202, b"XXXX"), "not a bzImage"),
        (
            lambda k: _patched(k, 0x206, struct.pack("<H", 0x020A)),
            r"boot protocol 2\.10 too old \(need 2\.12\)",
        ),
        (lambda k: _patched(k, 0x236, struct.pack("<H", 0)), "64-bit entry"),
        (lambda k: _patched(k, 0x211, b"\0"), "zImage"),
    ],
)
def test_bad_images(
    make_mem: MakeMem, debian_kernel: bytes, mutate: Callable[[bytes], bytes], message: str
) -> None:
    with pytest.raises(BootError, match=message):
        load_bzimage(make_mem(MEMORY), mutate(debian_kernel), "")


def test_no_header_is_not_a_kernel() -> None:
    with pytest.raises(BootError, match="not a bzImage or PVH ELF"):
        detect_kernel(b"MZ" + bytes(4096))


def test_initrd_too_big(make_mem: MakeMem, debian_kernel: bytes) -> None:
    with pytest.raises(BootError, match=r"initrd does not fit in memory: 20971520 bytes"):
        load_bzimage(make_mem(96 * MiB), debian_kernel, "", bytes(20 * MiB))


def test_command_line_too_long(make_mem: MakeMem, debian_kernel: bytes) -> None:
    limit = _img(debian_kernel, bz.OFF_CMDLINE_SIZE, "<I")
    load_bzimage(make_mem(MEMORY), debian_kernel, "a" * limit)
    with pytest.raises(BootError, match=f"too long: {limit + 1} bytes .*at most {limit}"):
        load_bzimage(make_mem(MEMORY), debian_kernel, "a" * (limit + 1))


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (64 * MiB, r"kernel does not fit in memory: it needs \d+\.\d MiB .* guest has 64\.0 MiB"),
        (1 * MiB, "guest memory too small"),
    ],
)
def test_memory_too_small(make_mem: MakeMem, debian_kernel: bytes, size: int, message: str) -> None:
    with pytest.raises(BootError, match=message):
        load_bzimage(make_mem(size), debian_kernel, "")


def test_framebuffer_inside_ram_is_refused(make_mem: MakeMem, debian_kernel: bytes) -> None:
    with pytest.raises(BootError, match="overlaps guest RAM"):
        load_bzimage(make_mem(MEMORY), debian_kernel, "", None, ScreenInfo(0x800000, 640, 480))


def test_refused_load_leaves_memory_untouched(make_mem: MakeMem, debian_kernel: bytes) -> None:
    mem = make_mem(MEMORY)
    bad_fb = ScreenInfo(0x800000, 640, 480)
    with pytest.raises(BootError):
        load_bzimage(mem, debian_kernel, "console=ttyS0", b"initrd" * 100, bad_fb)
    assert mem.read(layout.ZERO_PAGE, 0x1000) == bytes(0x1000)
    assert mem.read(MEMORY - 0x1000, 0x1000) == bytes(0x1000)
    assert mem.read(_img(debian_kernel, bz.OFF_PREF_ADDRESS, "<Q"), 4096) == bytes(4096)
