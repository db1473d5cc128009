"""Tell which loader a kernel file needs, so the caller can give one clear error up front."""

from __future__ import annotations

from typing import Literal

from vmgui.vmm.boot import elf
from vmgui.vmm.boot.bzimage import HDRS_MAGIC, OFF_HEADER
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.boot.pvh import pvh_entry

KernelKind = Literal["bzimage", "pvh"]


def detect_kernel(data: bytes) -> KernelKind:
    """Return "bzimage" or "pvh"; BootError for anything else (including an ELF with no PVH note)."""
    if data[OFF_HEADER : OFF_HEADER + 4] == HDRS_MAGIC:
        return "bzimage"
    if elf.is_elf(data):
        pvh_entry(data, elf.parse(data))
        return "pvh"
    raise BootError("kernel is not a bzImage or PVH ELF")
