"""The 64-bit boot protocol on real /dev/kvm: a tiny synthesized bzImage run by vmgui-vmm.

The stock Debian kernel cannot boot on this machine's KVM (its ring-0 code is emulated), so this
is the end-to-end check of the loader's CpuState: the image's 64-bit entry runs in long mode
with our page tables and GDT, finds boot_params through %rsi, prints the command line through
cmd_line_ptr and the e820 entry count, then powers off through the ACPI sleep control port.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from tests.support import need_kvm, need_tool
from tests.vmm.vmm_process import run_vmm
from vmgui.vmm.devices.acpi_pm import S5_SLP_TYP, SLP_EN, SLP_TYP_SHIFT

ENTRY64 = f"""
    .code64
    .text
    .fill 0x200, 1, 0xf4            # 32-bit entry area: hlt (never used)
start64:                            # load address + 0x200
    cmpl $0x53726448, 0x202(%rsi)   # "HdrS" in boot_params' copy of the setup header?
    jne fail
    movl 0x228(%rsi), %ecx          # cmd_line_ptr
    movw $0x3f8, %dx
1:  movb (%rcx), %al
    testb %al, %al
    jz 2f
    outb %al, %dx
    incq %rcx
    jmp 1b
2:  movb 0x1e8(%rsi), %al           # e820_entries
    addb $'0', %al
    outb %al, %dx
    movw $0x3c0, %dx                # ACPI sleep control: SLP_EN | SLP_TYP(S5)
    movb ${SLP_EN | (S5_SLP_TYP << SLP_TYP_SHIFT)}, %al
    outb %al, %dx
3:  hlt
    jmp 3b
fail:
    movw $0x3f8, %dx
    movb $'!', %al
    outb %al, %dx
    jmp 3b
"""


def make_bzimage(payload: bytes) -> bytes:
    """A protocol 2.15 bzImage: one setup sector holding only the header, then `payload`."""
    payload = payload.ljust((len(payload) + 15) // 16 * 16, b"\xf4")  # whole paragraphs
    setup = bytearray(1024)
    setup[0x1F1] = 1  # setup_sects
    struct.pack_into("<I", setup, 0x1F4, (len(payload) + 15) // 16)  # syssize
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200:0x202] = b"\xeb\x66"  # jmp: the header ends at 0x268
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)
    setup[0x211] = 0x01  # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFF_FFFF)  # initrd_addr_max
    struct.pack_into("<IBBH", setup, 0x230, 0x20_0000, 1, 21, 0x3)  # align, relocatable, XLF
    struct.pack_into("<I", setup, 0x238, 255)  # cmdline_size
    struct.pack_into("<QI", setup, 0x258, 0x100_0000, 0x10_0000)  # pref_address, init_size
    return bytes(setup) + payload


def test_synthetic_bzimage_runs_64bit_entry_and_powers_off(tmp_path: Path) -> None:
    need_kvm()
    gcc, objcopy = need_tool("gcc"), need_tool("objcopy")
    src, obj, flat = tmp_path / "entry.S", tmp_path / "entry.o", tmp_path / "entry.bin"
    src.write_text(ENTRY64)
    subprocess.run([gcc, "-c", "-o", str(obj), str(src)], check=True, capture_output=True)
    subprocess.run(
        [objcopy, "-O", "binary", "-j", ".text", str(obj), str(flat)],
        check=True,
        capture_output=True,
    )
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(make_bzimage(flat.read_bytes()))
    cmdline = "console=ttyS0 hello-from-the-zero-page"
    out = run_vmm("--kernel", kernel, "--cmdline", cmdline, "--memory", "64M", "--serial", "stdio")
    # The VMM may append its own parameters (virtio_mmio.device=...) after ours.
    assert out.stdout.startswith(cmdline.encode()), (out.stdout, out.stderr.decode())
    assert out.stdout.endswith(b"3") and b"!" not in out.stdout  # 3 e820 entries
    assert out.returncode == 0, out.stderr.decode()
