"""Put a fresh vCPU into the state a PC's CPU has at power-on, and the boot vCPU at its entry.

CPUID starts from KVM_GET_SUPPORTED_CPUID, trimmed to what a guest can use (cpuid.py); each vCPU gets its own APIC ID (leaf 1 EBX[31:24],
leaf 0xB/0x1F EDX) and the hypervisor bit. LAPIC LINT0 is ExtINT (the 8259 PIC reaches the BSP
the way the MP table and MADT describe) and LINT1 NMI. MSRs get the values Linux expects of a
firmware (fast strings on, MTRRs enabled with write-back default). The boot CpuState from a
loader is copied onto KVM_SET_SREGS/REGS; application processors stay in KVM's wait-for-SIPI
state (the in-kernel LAPIC runs INIT-SIPI-SIPI), so SMP guests start them as on real hardware.
"""

from __future__ import annotations

from vmgui.vmm import kvm
from vmgui.vmm.boot.cpu_state import CpuState, DescriptorTable, Segment
from vmgui.vmm.cpuid import guest_cpuid

# CPUID
_LEAF_FEATURES = 0x1
_LEAF_TOPOLOGY = 0xB
_LEAF_TOPOLOGY_V2 = 0x1F
_ECX_HYPERVISOR = 1 << 31

# LAPIC register offsets and LVT delivery modes
APIC_LVT_LINT0 = 0x350
APIC_LVT_LINT1 = 0x360
_APIC_DELIVERY_MASK = 0x700
APIC_MODE_NMI = 0x400
APIC_MODE_EXTINT = 0x700

# MSRs
MSR_IA32_TSC = 0x10
MSR_IA32_SYSENTER_CS = 0x174
MSR_IA32_SYSENTER_ESP = 0x175
MSR_IA32_SYSENTER_EIP = 0x176
MSR_IA32_MISC_ENABLE = 0x1A0
MSR_MTRR_DEF_TYPE = 0x2FF
MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_SYSCALL_MASK = 0xC0000084
MSR_KERNEL_GS_BASE = 0xC0000102
MISC_ENABLE_FAST_STRING = 1 << 0
MTRR_ENABLE = 1 << 11
MTRR_TYPE_WRBACK = 6

BOOT_MSRS = {
    MSR_IA32_SYSENTER_CS: 0,
    MSR_IA32_SYSENTER_ESP: 0,
    MSR_IA32_SYSENTER_EIP: 0,
    MSR_STAR: 0,
    MSR_CSTAR: 0,
    MSR_KERNEL_GS_BASE: 0,
    MSR_SYSCALL_MASK: 0,
    MSR_LSTAR: 0,
    MSR_IA32_TSC: 0,
    MSR_IA32_MISC_ENABLE: MISC_ENABLE_FAST_STRING,
    MSR_MTRR_DEF_TYPE: MTRR_ENABLE | MTRR_TYPE_WRBACK,
}

FPU_CONTROL_WORD = 0x37F
MXCSR_DEFAULT = 0x1F80


def vcpu_cpuid(supported: list[kvm.kvm_cpuid_entry2], apic_id: int) -> list[kvm.kvm_cpuid_entry2]:
    """The supported CPUID leaves adjusted for one vCPU (copies; `supported` is unchanged)."""
    out = guest_cpuid(supported)
    for e in out:
        if e.function == _LEAF_FEATURES:
            e.ebx = (e.ebx & 0x00FFFFFF) | (apic_id << 24)
            e.ecx |= _ECX_HYPERVISOR
        elif e.function in (_LEAF_TOPOLOGY, _LEAF_TOPOLOGY_V2):
            e.edx = apic_id
    return out


def set_msrs(fd: kvm.VcpuFd, values: dict[int, int]) -> None:
    """Set what this KVM accepts; one rejected MSR must not stop the rest.

    One KVM_SET_MSRS for all of them: KVM sets entries in order and returns how many it set, so
    a short count names the rejected entry, which is skipped before trying the rest.
    """
    items = list(values.items())
    while items:
        try:
            done = fd.set_msrs(dict(items))
        except kvm.KvmError:
            done = 0
        items = items[done + 1 :]


def configure_vcpu(fd: kvm.VcpuFd, supported: list[kvm.kvm_cpuid_entry2]) -> None:
    """Power-on state shared by every vCPU: CPUID, MSRs, FPU, LAPIC LINT0/LINT1."""
    fd.set_cpuid2(vcpu_cpuid(supported, fd.vcpu_id))
    set_msrs(fd, BOOT_MSRS)
    fpu = kvm.kvm_fpu()
    fpu.fcw = FPU_CONTROL_WORD
    fpu.mxcsr = MXCSR_DEFAULT
    fd.set_fpu(fpu)
    lapic = fd.get_lapic()
    for reg, mode in ((APIC_LVT_LINT0, APIC_MODE_EXTINT), (APIC_LVT_LINT1, APIC_MODE_NMI)):
        lapic.set_reg(reg, (lapic.get_reg(reg) & ~_APIC_DELIVERY_MASK) | mode)
    fd.set_lapic(lapic)


def _segment(dst: kvm.kvm_segment, src: Segment) -> None:
    dst.base, dst.limit, dst.selector = src.base, src.limit, src.selector
    dst.type, dst.present, dst.dpl, dst.db = src.type, src.present, src.dpl, src.db
    dst.s, dst.l, dst.g, dst.avl, dst.unusable = src.s, src.l, src.g, src.avl, src.unusable


def _dtable(dst: kvm.kvm_dtable, src: DescriptorTable) -> None:
    dst.base, dst.limit = src.base, src.limit


def apply_cpu_state(fd: kvm.VcpuFd, state: CpuState) -> None:
    """Copy a loader's entry state onto the boot vCPU's special and general registers."""
    sregs = fd.get_sregs()
    for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr"):
        _segment(getattr(sregs, name), getattr(state, name))
    _dtable(sregs.gdt, state.gdt)
    _dtable(sregs.idt, state.idt)
    sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer = state.cr0, state.cr3, state.cr4, state.efer
    fd.set_sregs(sregs)
    regs = kvm.kvm_regs()
    regs.rip, regs.rsp, regs.rflags = state.rip, state.rsp, state.rflags
    regs.rsi, regs.rbx, regs.rdi, regs.rbp = state.rsi, state.rbx, state.rdi, state.rbp
    fd.set_regs(regs)
