"""`vmgui-vmm` with the cheapest port exit pure Python allows, for bench_vmm.py's floor row.

    python bench/vmm_floor.py run --kernel portbench.elf

The real VMM, except that `kvm.enter_guest` is wrapped: after each KVM_RUN it reads exit_reason
and the port from the kvm_run page, and an exit to portbench's BENCH_PORT goes straight back
into the guest; every other exit returns to the real vCPU loop. What a bench-port exit costs here
is what any pure-Python VMM pays at least: one fcntl.ioctl (with its GIL release) and two
reads of the kvm_run page, with no dispatch, no device and no counting. If this floor is below
QEMU's rate, no change to our loop can reach QEMU; the gap between this row and ours is what the
loop itself costs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmgui.vmm import kvm
from vmgui.vmm.cli import main

BENCH_PORT = 0x5F0  # tests/guests/portbench.c
_REASON_U32 = kvm.RUN_EXIT_REASON // 4
_PORT_U16 = (kvm.RUN_EXIT_UNION + 2) // 2  # io: direction u8, size u8, port u16

#: vCPU fd -> (u32 view, u16 view, the page view they came from) of its kvm_run page.
_views: dict[int, tuple[memoryview, memoryview, memoryview]] = {}
_vcpu_init = kvm.VcpuFd.__init__
_vcpu_close = kvm.VcpuFd.close
_enter_guest = kvm.enter_guest  # fcntl.ioctl where that is safe (see vmgui/vmm/kvm.py)


def _init(self: kvm.VcpuFd, fd: int, vcpu_id: int, mmap_size: int) -> None:
    _vcpu_init(self, fd, vcpu_id, mmap_size)
    page = memoryview(self.run_mmap)
    _views[fd] = (page.cast("I"), page.cast("H"), page)


def _close(self: kvm.VcpuFd) -> None:
    for view in _views.pop(self.fd, ()):
        view.release()  # before the page can be unmapped
    _vcpu_close(self)


def enter_guest_floor(fd: int, request: int) -> int:
    u32, u16, _ = _views[fd]
    enter = _enter_guest
    while True:
        enter(fd, request)
        if u32[_REASON_U32] != kvm.KVM_EXIT_IO or u16[_PORT_U16] != BENCH_PORT:
            return 0


if __name__ == "__main__":
    kvm.VcpuFd.__init__ = _init  # type: ignore[method-assign]
    kvm.VcpuFd.close = _close  # type: ignore[method-assign]
    kvm.enter_guest = enter_guest_floor
    sys.exit(main())
