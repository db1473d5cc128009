"""Linux bzImage loader for the 64-bit boot protocol (Documentation/arch/x86/boot.rst).

The real-mode setup code is never run: the loader does its job instead, filling the zero page
(boot_params) from the image's setup header, and enters the protected-mode kernel at its 64-bit
entry (load address + 0x200) with paging on. Needs protocol >= 2.12 with XLF_KERNEL_64.
"""

from __future__ import annotations

import struct

from vmgui.vmm import layout
from vmgui.vmm.boot import gdt
from vmgui.vmm.boot.cpu_state import (
    CR0_ET,
    CR0_PE,
    CR0_PG,
    CR4_PAE,
    EFER_LMA,
    EFER_LME,
    CpuState,
)
from vmgui.vmm.boot.e820 import E820_RAM, E820Entry, build_e820
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.boot.paging import write_identity_page_tables
from vmgui.vmm.boot.placement import encode_cmdline, place_initrd, ram_top_below_4g
from vmgui.vmm.boot.screen_info import ScreenInfo, encode_screen_info
from vmgui.vmm.memory import GuestMemory

HDRS_MAGIC = b"HdrS"
MIN_PROTOCOL = 0x020C  # 2.12: xloadflags, so XLF_KERNEL_64 can be checked

# setup header / boot_params offsets (they coincide: the header sits at 0x1f1 in both)
OFF_SETUP_SECTS = 0x1F1
OFF_SYSSIZE = 0x1F4
OFF_JUMP = 0x200
OFF_HEADER = 0x202
OFF_VERSION = 0x206
OFF_TYPE_OF_LOADER = 0x210
OFF_LOADFLAGS = 0x211
OFF_CODE32_START = 0x214
OFF_RAMDISK_IMAGE = 0x218
OFF_RAMDISK_SIZE = 0x21C
OFF_HEAP_END_PTR = 0x224
OFF_CMD_LINE_PTR = 0x228
OFF_INITRD_ADDR_MAX = 0x22C
OFF_KERNEL_ALIGNMENT = 0x230
OFF_RELOCATABLE = 0x234
OFF_XLOADFLAGS = 0x236
OFF_CMDLINE_SIZE = 0x238
OFF_PREF_ADDRESS = 0x258
OFF_INIT_SIZE = 0x260
SETUP_HEADER_END_MAX = 0x290  # boot_params.edd_mbr_sig_buffer follows the header
# boot_params fields outside the setup header
BP_ACPI_RSDP_ADDR = 0x070
BP_EXT_RAMDISK_IMAGE = 0x0C0
BP_EXT_RAMDISK_SIZE = 0x0C4
BP_EXT_CMD_LINE_PTR = 0x0C8
BP_E820_ENTRIES = 0x1E8
BP_E820_TABLE = 0x2D0
E820_MAX_ENTRIES_ZEROPAGE = 128
ZERO_PAGE_SIZE = 0x1000

LOADER_TYPE_UNDEFINED = 0xFF
LOADED_HIGH = 0x01
CAN_USE_HEAP = 0x80
XLF_KERNEL_64 = 1 << 0
XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1
#: boot.rst's example heap end for a loader that loads high (heap_end_ptr = heap_end - 0x200).
HEAP_END_PTR = 0xE000 - 0x200
ENTRY_64_OFFSET = 0x200


class SetupHeader:
    """The fields of an image's setup header this loader needs, validated on construction."""

    def __init__(self, data: bytes) -> None:
        if len(data) < OFF_VERSION + 2 or data[OFF_HEADER : OFF_HEADER + 4] != HDRS_MAGIC:
            raise BootError("kernel is not a bzImage (no 'HdrS' boot header at 0x202)")
        self.version = _u16(data, OFF_VERSION)
        if self.version < MIN_PROTOCOL:
            raise BootError(
                f"boot protocol {self.version >> 8}.{self.version & 0xFF:02d} too old (need 2.12)"
            )
        self.header_end = min(OFF_HEADER + data[OFF_JUMP + 1], SETUP_HEADER_END_MAX)
        if len(data) < max(self.header_end, OFF_INIT_SIZE + 4):
            raise BootError(f"kernel image is truncated: {len(data)} bytes, setup header cut off")
        self.xloadflags = _u16(data, OFF_XLOADFLAGS)
        if not self.xloadflags & XLF_KERNEL_64:
            raise BootError("kernel has no 64-bit entry point (XLF_KERNEL_64 not set)")
        if not data[OFF_LOADFLAGS] & LOADED_HIGH:
            raise BootError("kernel is a zImage (loads below 1 MiB); only bzImage is supported")
        setup_sects = data[OFF_SETUP_SECTS] or 4  # 0 means 4, as the protocol says
        self.kernel_offset = (setup_sects + 1) * 512
        self.kernel_size = len(data) - self.kernel_offset
        syssize = _u32(data, OFF_SYSSIZE) * 16
        if self.kernel_size <= 0 or self.kernel_size < syssize:
            raise BootError(
                f"kernel image is truncated: {len(data)} bytes, the header says "
                f"{self.kernel_offset + syssize}"
            )
        self.initrd_addr_max = _u32(data, OFF_INITRD_ADDR_MAX)
        self.kernel_alignment = _u32(data, OFF_KERNEL_ALIGNMENT)
        self.relocatable = bool(data[OFF_RELOCATABLE])
        self.cmdline_size = _u32(data, OFF_CMDLINE_SIZE)
        self.pref_address = _u64(data, OFF_PREF_ADDRESS)
        self.init_size = _u32(data, OFF_INIT_SIZE)

    def load_address(self) -> int:
        """Where the protected-mode kernel goes: pref_address (the address it runs at anyway;
        a relocatable kernel below it would move itself there), aligned to kernel_alignment."""
        addr = max(self.pref_address, layout.HIMEM_START)
        if self.relocatable and self.kernel_alignment & (self.kernel_alignment - 1) == 0:
            align = max(self.kernel_alignment, 1)
            addr = (addr + align - 1) & ~(align - 1)
        return addr


def _u16(data: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<H", data, off)[0])


def _u32(data: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def _u64(data: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _check_framebuffer(fb: ScreenInfo, e820: list[E820Entry]) -> None:
    for e in e820:
        if e.type == E820_RAM and fb.base < e.end and e.addr < fb.base + fb.size:
            raise BootError(f"framebuffer at {fb.base:#x} overlaps guest RAM")


def load_bzimage(
    mem: GuestMemory,
    kernel: bytes,
    cmdline: str,
    initrd: bytes | None = None,
    framebuffer: ScreenInfo | None = None,
    rsdp_addr: int | None = None,
) -> CpuState:
    """Load `kernel` (a bzImage) and its boot structures into `mem`; return the entry state."""
    hdr = SetupHeader(kernel)
    e820 = build_e820(mem)
    top = ram_top_below_4g(e820)
    load = hdr.load_address()
    runtime_end = load + max(hdr.init_size, hdr.kernel_size)
    if runtime_end > top:
        raise BootError(
            f"kernel does not fit in memory: it needs {_mib(runtime_end)} of low RAM "
            f"(loaded at {load:#x}, init_size {_mib(hdr.init_size)}), the guest has {_mib(top)}"
        )
    cmd = encode_cmdline(cmdline, hdr.cmdline_size)
    zp = bytearray(ZERO_PAGE_SIZE)
    zp[OFF_SETUP_SECTS : hdr.header_end] = kernel[OFF_SETUP_SECTS : hdr.header_end]
    zp[OFF_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED
    zp[OFF_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP
    struct.pack_into("<I", zp, OFF_CODE32_START, load)
    struct.pack_into("<H", zp, OFF_HEAP_END_PTR, HEAP_END_PTR)
    struct.pack_into("<I", zp, OFF_CMD_LINE_PTR, layout.CMDLINE)
    initrd_addr = 0
    if initrd:
        limit = min(top, hdr.initrd_addr_max + 1)
        if not hdr.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G:
            limit = min(limit, 1 << 32)
        initrd_addr = place_initrd(len(initrd), runtime_end, limit)
        size = len(initrd)
        struct.pack_into(
            "<II", zp, OFF_RAMDISK_IMAGE, initrd_addr & 0xFFFF_FFFF, size & 0xFFFF_FFFF
        )
        struct.pack_into("<II", zp, BP_EXT_RAMDISK_IMAGE, initrd_addr >> 32, size >> 32)
    if framebuffer is not None:
        _check_framebuffer(framebuffer, e820)
        si = encode_screen_info(framebuffer)
        zp[0 : len(si)] = si
    if rsdp_addr is not None:
        struct.pack_into("<Q", zp, BP_ACPI_RSDP_ADDR, rsdp_addr)
    if len(e820) > E820_MAX_ENTRIES_ZEROPAGE:
        raise BootError(f"memory map has {len(e820)} entries, the zero page holds 128")
    zp[BP_E820_ENTRIES] = len(e820)
    for i, e in enumerate(e820):
        struct.pack_into("<QQI", zp, BP_E820_TABLE + 20 * i, e.addr, e.size, e.type)

    # Everything is validated; only now is guest memory touched.
    mem.write(load, memoryview(kernel)[hdr.kernel_offset :])
    if initrd:
        mem.write(initrd_addr, initrd)
    mem.write(layout.CMDLINE, cmd)
    mem.write(layout.ZERO_PAGE, zp)
    gdt_reg, idt_reg = gdt.write_gdt(mem)
    cr3 = write_identity_page_tables(mem)
    data_seg = gdt.segment(gdt.DATA_SELECTOR)
    return CpuState(
        mode="long64",
        rip=load + ENTRY_64_OFFSET,
        rsp=layout.BOOT_STACK,
        rbp=layout.BOOT_STACK,
        rsi=layout.ZERO_PAGE,
        cr0=CR0_PE | CR0_ET | CR0_PG,
        cr3=cr3,
        cr4=CR4_PAE,
        efer=EFER_LME | EFER_LMA,
        cs=gdt.segment(gdt.CODE64_SELECTOR),
        ds=data_seg,
        es=data_seg,
        fs=data_seg,
        gs=data_seg,
        ss=data_seg,
        tr=gdt.segment(gdt.TSS_SELECTOR),
        gdt=gdt_reg,
        idt=idt_reg,
    )
