"""Per-vCPU power-on state through the real /dev/kvm: APIC IDs in CPUID, LINT0/LINT1, MSRs,
and a loader's CpuState landing in the registers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import need_kvm
from vmgui.vmm import kvm
from vmgui.vmm.boot.cpu_state import CR0_PE, CpuState, Segment
from vmgui.vmm.cpuid import guest_cpuid
from vmgui.vmm.vcpu_setup import (
    APIC_LVT_LINT0,
    APIC_LVT_LINT1,
    APIC_MODE_EXTINT,
    APIC_MODE_NMI,
    MSR_MTRR_DEF_TYPE,
    apply_cpu_state,
    configure_vcpu,
    vcpu_cpuid,
)


@pytest.fixture
def vm() -> Iterator[tuple[kvm.Kvm, kvm.VmFd]]:
    need_kvm()
    with kvm.Kvm() as system:
        vm = system.create_vm()
        vm.create_irqchip()
        yield system, vm
        vm.close()


def test_each_vcpu_gets_its_apic_id_and_lint_modes(vm: tuple[kvm.Kvm, kvm.VmFd]) -> None:
    system, machine = vm
    supported = system.get_supported_cpuid()
    for index in (0, 1):
        fd = machine.create_vcpu(index)
        configure_vcpu(fd, supported)
        leaf1 = next(e for e in fd.get_cpuid2() if e.function == 1)
        assert leaf1.ebx >> 24 == index
        assert leaf1.ecx & (1 << 31)  # hypervisor present
        lapic = fd.get_lapic()
        assert lapic.get_reg(APIC_LVT_LINT0) & 0x700 == APIC_MODE_EXTINT
        assert lapic.get_reg(APIC_LVT_LINT1) & 0x700 == APIC_MODE_NMI
        assert fd.get_msrs([MSR_MTRR_DEF_TYPE])[MSR_MTRR_DEF_TYPE] == 0x806
        fd.close()
    assert supported[0].function == vcpu_cpuid(supported, 5)[0].function  # source untouched


def test_cpu_state_lands_in_registers(vm: tuple[kvm.Kvm, kvm.VmFd]) -> None:
    _, machine = vm
    fd = machine.create_vcpu(0)
    code = Segment(selector=0x08, type=0xB, db=1)
    state = CpuState(mode="protected32", rip=0x100000, rsp=0x8FF0, rbx=0x6000, cr0=CR0_PE, cs=code)
    apply_cpu_state(fd, state)
    regs, sregs = fd.get_regs(), fd.get_sregs()
    assert (regs.rip, regs.rsp, regs.rbx, regs.rflags) == (0x100000, 0x8FF0, 0x6000, 2)
    assert (sregs.cs.selector, sregs.cs.db, sregs.cs.limit) == (0x08, 1, 0xFFFFFFFF)
    assert sregs.cr0 & CR0_PE
    fd.close()


def test_a_rejected_msr_does_not_stop_the_rest(vm: tuple[kvm.Kvm, kvm.VmFd]) -> None:
    """set_msrs sets all MSRs in one ioctl and skips an entry KVM rejects, then goes on."""
    from vmgui.vmm.vcpu_setup import set_msrs

    _, machine = vm
    fd = machine.create_vcpu(0)
    sysenter_cs, sysenter_esp, bogus = 0x174, 0x175, 0x4000_0FFF
    set_msrs(fd, {sysenter_cs: 0x10, bogus: 1, sysenter_esp: 0x2000})
    assert fd.get_msrs([sysenter_cs, sysenter_esp]) == {sysenter_cs: 0x10, sysenter_esp: 0x2000}
    fd.close()


def leaf(table: list[kvm.kvm_cpuid_entry2], function: int, index: int = 0) -> kvm.kvm_cpuid_entry2:
    [e] = [e for e in table if (e.function, e.index) == (function, index)]
    return e


def entry(function: int, index: int = 0, eax: int = 0, ebx: int = 0, ecx: int = 0,
          edx: int = 0) -> kvm.kvm_cpuid_entry2:
    e = kvm.kvm_cpuid_entry2()
    e.function, e.index, e.eax, e.ebx, e.ecx, e.edx = function, index, eax, ebx, ecx, edx
    return e


def test_guest_cpuid_drops_amx_and_avx10_unless_granted() -> None:
    """What a Sapphire/Granite Rapids host's KVM_GET_SUPPORTED_CPUID lists (the leaves that broke
    the round-trip test there), built into a guest table with and without AMX permission."""
    amx_bits = (1 << 22) | (1 << 24) | (1 << 25)
    host = [entry(0x0, eax=0x24), entry(0x7, 0, eax=1, edx=amx_bits | 1 << 4),
            entry(0x7, 1, edx=1 << 19), entry(0xD, 0, eax=0x602E7), entry(0xD, 17, eax=64),
            entry(0xD, 18, eax=8192), entry(0x1D, 0, eax=1), entry(0x1E, 0, ebx=0x4002),
            entry(0x24, 0, ebx=0x70002), entry(0x40000000), entry(0x80000000, eax=0x80000008)]
    plain = guest_cpuid(host, xfeature_permission=0x2E7)
    assert {(e.function, e.index) for e in plain} == {
        (0x0, 0), (0x7, 0), (0x7, 1), (0xD, 0), (0x40000000, 0), (0x80000000, 0)}
    assert leaf(plain, 0x0).eax == 0xD  # the highest basic leaf left
    assert leaf(plain, 0x7).edx == 1 << 4 and leaf(plain, 0x7, 1).edx == 0
    assert leaf(plain, 0xD).eax == 0x2E7
    granted = guest_cpuid(host, xfeature_permission=0x602E7)
    assert {0x1D, 0x1E} <= {e.function for e in granted} and 0x24 not in {e.function for e in granted}
    assert leaf(granted, 0x7).edx & amx_bits == amx_bits and leaf(granted, 0xD).eax == 0x602E7
    assert leaf(host, 0x7).edx & amx_bits  # the input is unchanged


def test_this_hosts_guest_cpuid_round_trips_through_kvm(vm: tuple[kvm.Kvm, kvm.VmFd]) -> None:
    """KVM keeps the CPUID table it accepted: every leaf we set is the leaf we read back."""
    system, machine = vm
    fd = machine.create_vcpu(0)
    table = vcpu_cpuid(system.get_supported_cpuid(), 0)
    fd.set_cpuid2(table)
    assert {(e.function, e.index) for e in fd.get_cpuid2()} == {(e.function, e.index) for e in table}
    fd.close()
