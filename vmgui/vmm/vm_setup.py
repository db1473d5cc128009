"""VM-wide KVM set-up for one power-on (VM, guest RAM, memslots, irqchip, PIT, supported CPUID),
and `EarlyStart`, which does the first power-on's share on a helper thread.

Why a thread: these ioctls spend ~8 ms in the kernel on this 2-core host
(KVM_SET_USER_MEMORY_REGION for 256 MiB alone ~6 ms, KVM_CREATE_PIT2 starts a kernel thread) and
ctypes releases the GIL around them, so run early they overlap the main thread importing the rest
of the VMM instead of adding to the time before the guest's first instruction. This module imports
only kvm.py and memory.py so the thread can start before the heavy imports.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from vmgui.vmm import kvm, layout
from vmgui.vmm.errors import VmmError
from vmgui.vmm.memory import GuestMemory

#: Overrides /dev/kvm (a KVM device node elsewhere, e.g. in a container; tests use it too).
KVM_DEVICE_ENV = "VMGUI_KVM_DEVICE"
#: GIL switch interval while the helper thread runs: with Python's 5 ms default it would wait up
#: to 5 ms for the importing main thread after every ioctl.
_SETUP_SWITCH_INTERVAL = 0.0002


def kvm_device_path() -> str:
    return os.environ.get(KVM_DEVICE_ENV) or kvm.KVM_DEVICE


class VmShell:
    """A VM with RAM, memslots, irqchip and PIT but no devices or vCPUs yet; a Board owns it."""

    def __init__(
        self, vm: kvm.VmFd, mem: GuestMemory, supported_cpuid: list[kvm.kvm_cpuid_entry2]
    ) -> None:
        self.vm = vm
        self.mem = mem
        self.supported_cpuid = supported_cpuid

    def close(self) -> None:
        self.vm.close()
        with contextlib.suppress(BufferError, OSError):
            self.mem.close()


def create_shell(system: kvm.Kvm, memory: int) -> VmShell:
    """Raises VmmError when RAM cannot be allocated, KvmError when an ioctl fails."""
    try:
        mem = GuestMemory.create(memory)
    except (OSError, ValueError) as e:
        raise VmmError(f"cannot allocate {memory >> 20} MiB of guest memory: {e}") from None
    vm: kvm.VmFd | None = None
    try:
        vm = system.create_vm()
        vm.set_tss_addr(layout.KVM_TSS)
        vm.set_identity_map_addr(layout.KVM_IDENTITY_MAP)
        vm.create_irqchip()
        vm.create_pit2()
        # Ticks are not held back for the guest's acknowledgement (QEMU's lost_tick_policy=
        # discard): on a host that emulates guest ring 0, SeaBIOS's tick-counted waits (boot
        # retry, timeouts) froze for good in 4 of 6 no-bootable-device runs with reinjection and
        # in 2 of 23 without (IRQ 0 stopped; see docs/architecture.md). Guests keep time with
        # the TSC or kvmclock; a lost tick costs a tick-counting guest only a tick.
        vm.set_pit_reinject(False)
        for slot, region in enumerate(mem.regions):
            vm.set_user_memory_region(slot, region.guest_addr, region.size, region.host_addr)
        return VmShell(vm, mem, system.get_supported_cpuid())
    except BaseException:
        if vm is not None:
            vm.close()
        with contextlib.suppress(BufferError, OSError):
            mem.close()
        raise


class EarlyStart:
    """Opens /dev/kvm and builds the first VmShell on a thread; `take_*` hand them over.

    Errors are raised by the `take_*` call that needed the failed step, so the user sees the
    same one line, in the same order, as without the thread.
    """

    def __init__(self, memory: int, device: str | None = None) -> None:
        self._device = device or kvm_device_path()
        self.memory = memory
        self._kvm: kvm.Kvm | None = None
        self._shell: VmShell | None = None
        self._error: BaseException | None = None
        self._saved_interval: float | None = sys.getswitchinterval()
        sys.setswitchinterval(_SETUP_SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._run, name="vmgui-kvm-setup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._kvm = kvm.Kvm(self._device)
            self._shell = create_shell(self._kvm, self.memory)
        except BaseException as e:  # handed to the main thread by take_*
            self._error = e

    def _join(self) -> None:
        self._thread.join()
        if self._saved_interval is not None:
            sys.setswitchinterval(self._saved_interval)
            self._saved_interval = None

    def take_kvm(self) -> kvm.Kvm:
        """The opened /dev/kvm handle (the caller closes it), or the error opening it."""
        self._join()
        system, self._kvm = self._kvm, None
        if system is None:
            assert self._error is not None
            raise self._error
        return system

    def take_shell(self) -> VmShell:
        """The first power-on's VmShell (the caller closes it), or the error building it."""
        self._join()
        shell, self._shell = self._shell, None
        if shell is None:
            assert self._error is not None
            raise self._error
        return shell

    def close(self) -> None:
        """Release whatever was not taken (the run failed before needing it)."""
        self._join()
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self._kvm is not None:
            self._kvm.close()
            self._kvm = None
