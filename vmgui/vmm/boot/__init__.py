"""Loaders: put a kernel and its boot structures into guest memory and say how to enter it.

Everything here is pure: it writes through GuestMemory's checked accessors and returns a CpuState;
the machine applies that state to the boot vCPU. No KVM calls.

    kind = detect_kernel(data)                      # "bzimage" | "pvh", or BootError
    state = load_bzimage(mem, data, cmdline, initrd, framebuffer, rsdp_addr)
    state = load_pvh(mem, data, cmdline, initrd, rsdp_addr)
    build_mptable(mem, ncpus)
"""

from __future__ import annotations

from vmgui.vmm.boot.bzimage import load_bzimage
from vmgui.vmm.boot.cpu_state import CpuState, Segment
from vmgui.vmm.boot.detect import detect_kernel
from vmgui.vmm.boot.e820 import E820Entry, build_e820
from vmgui.vmm.boot.errors import BootError
from vmgui.vmm.boot.mptable import build_mptable
from vmgui.vmm.boot.pvh import load_pvh
from vmgui.vmm.boot.screen_info import ScreenInfo

__all__ = [
    "BootError",
    "CpuState",
    "E820Entry",
    "ScreenInfo",
    "Segment",
    "build_e820",
    "build_mptable",
    "detect_kernel",
    "load_bzimage",
    "load_pvh",
]
