"""Placement rules both loaders share: command line encoding and where the initrd goes."""

from __future__ import annotations

from vmgui.vmm import layout
from vmgui.vmm.boot.e820 import E820_RAM, E820Entry
from vmgui.vmm.boot.errors import BootError

INITRD_ALIGN = 0x1000
_4G = 1 << 32


def ram_top_below_4g(e820: list[E820Entry]) -> int:
    """End of the highest RAM range below 4 GiB: the ceiling for everything 32-bit addressed."""
    return max(e.end for e in e820 if e.type == E820_RAM and e.end <= _4G)


def encode_cmdline(cmdline: str, limit: int | None = None) -> bytes:
    """NUL-terminated command line bytes; BootError if too long for the kernel or layout.CMDLINE."""
    raw = cmdline.encode()
    if b"\0" in raw:
        raise BootError("kernel command line contains a NUL byte")
    most = layout.CMDLINE_MAX - 1 if limit is None else min(limit, layout.CMDLINE_MAX - 1)
    if len(raw) > most:
        raise BootError(
            f"kernel command line too long: {len(raw)} bytes (the kernel accepts at most {most})"
        )
    return raw + b"\0"


def place_initrd(size: int, floor: int, ceiling: int) -> int:
    """Address for an initrd of `size` bytes at the top of [floor, ceiling), 4 KiB aligned."""
    addr = (ceiling - size) & ~(INITRD_ALIGN - 1)
    if size > ceiling or addr < floor:
        raise BootError(
            f"initrd does not fit in memory: {size} bytes, {max(ceiling - floor, 0)} bytes free "
            f"between the kernel ({floor:#x}) and the top of low RAM ({ceiling:#x})"
        )
    return addr
