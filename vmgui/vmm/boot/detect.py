"""Tell which loader a kernel file needs, so the caller can give one clear error up front."""

from __future__ import annotations

from vmgui.vmm.boot import elf
from vmgui.vmm.boot.bzimage import HDRS_MAGIC, OFF_HEADER
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.boot.pvh import pvh_entry
from vmgui.vmm.record import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: importing typing costs the VMM's start-up ~4 ms
    from typing import Literal

    KernelKind = Literal["bzimage", "pvh"]


def detect_kernel(data: bytes) -> KernelKind:
    """Return "bzimage" or "pvh"; BootError for anything else (including an ELF with no PVH note)."""
    if data[OFF_HEADER : OFF_HEADER + 4] == HDRS_MAGIC:
        return "bzimage"
    if elf.is_elf(data):
        pvh_entry(data, elf.parse(data))
        return "pvh"
    raise BootError("kernel is not a bzImage or PVH ELF")
