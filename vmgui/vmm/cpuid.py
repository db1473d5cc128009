"""The guest's CPUID, built on purpose from what KVM supports (as QEMU and Firecracker do).

Why: KVM_GET_SUPPORTED_CPUID lists every leaf this kernel knows on this CPU, including ones the
VM cannot use as they stand: AMX tile leaves (0x1d, 0x1e) whose XSAVE state this process was
not granted (arch_prctl ARCH_REQ_XCOMP_GUEST_PERM), AVX10 (0x24), SGX, processor trace and
others that need host set-up we never do. Handed over verbatim, the guest sees features it cannot
use and the table differs from host to host. So:

- basic leaves are kept only if listed in KEPT_BASIC_LEAVES; the feature bits that announce a
  dropped leaf are cleared, and leaf 0's maximum is lowered to the highest leaf kept;
- AMX (its XSAVE components in leaf 0xd, its leaves and feature bits) is offered only when this
  process was granted the tile state for guests (ARCH_GET_XCOMP_GUEST_PERM);
- extended (0x8000_0000+) and hypervisor (0x4000_0000+) leaves are kept as KVM reports them.
"""

from __future__ import annotations

import ctypes
import functools

from vmgui.vmm import kvm

LEAF_MAX_BASIC = 0x0
LEAF_FEATURES_EXT = 0x7
LEAF_XSAVE = 0xD
LEAF_AMX_TILE = 0x1D
LEAF_AMX_TMUL = 0x1E
LEAF_AVX10 = 0x24
BASIC_RANGE_END = 0x4000_0000

#: Basic leaves a guest gets: identity, features, caches, monitor, power, extended features,
#: perfmon, topology (0xb, 0x1f), XSAVE, TSC/crystal and nominal frequencies.
KEPT_BASIC_LEAVES = frozenset({0x0, 0x1, 0x2, 0x4, 0x5, 0x6, 0x7, 0xA, 0xB, 0xD, 0x15, 0x16, 0x1F})

# Leaf 7 subleaf 0/1 bits announcing leaves (or host set-up) we do not provide.
_L7_EBX_SGX = 1 << 2
_L7_EBX_PT = 1 << 25
_L7_ECX_KEYLOCKER = 1 << 23
_L7_ECX_SGX_LC = 1 << 30
_L7_EDX_HYBRID = 1 << 15
_L7_EDX_PCONFIG = 1 << 18
_L7_EDX_ARCH_LBR = 1 << 19
_L7_EDX_AMX = (1 << 22) | (1 << 24) | (1 << 25)  # AMX-BF16, AMX-TILE, AMX-INT8
_L7_1_EAX_AMX = (1 << 21) | (1 << 22)  # AMX-FP16, AMX-COMPLEX (announced in 7.1)
_L7_1_EDX_AVX10 = 1 << 19

# XSAVE state components that need a process permission (Linux "dynamic" features).
XFEATURE_XTILECFG = 1 << 17
XFEATURE_XTILEDATA = 1 << 18
XFEATURE_AMX = XFEATURE_XTILECFG | XFEATURE_XTILEDATA

_SYS_ARCH_PRCTL = 158  # x86-64
_ARCH_GET_XCOMP_GUEST_PERM = 0x1024


@functools.cache
def guest_xfeature_permission() -> int:
    """XSAVE components this process may expose to a guest; -1 (no limit) on kernels without
    the call (before Linux 5.17 there were no permission-gated components)."""
    libc = ctypes.CDLL(None, use_errno=True)
    perm = ctypes.c_uint64(0)
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_GUEST_PERM, ctypes.byref(perm)) != 0:
        return -1
    return perm.value


def guest_cpuid(supported: list[kvm.kvm_cpuid_entry2],
                xfeature_permission: int | None = None) -> list[kvm.kvm_cpuid_entry2]:
    """The VM's CPUID table (copies; `supported` is unchanged)."""
    permitted = guest_xfeature_permission() if xfeature_permission is None else xfeature_permission
    amx = permitted & XFEATURE_AMX == XFEATURE_AMX
    kept = set(KEPT_BASIC_LEAVES) | ({LEAF_AMX_TILE, LEAF_AMX_TMUL} if amx else set())
    out: list[kvm.kvm_cpuid_entry2] = []
    for src in supported:
        if src.function < BASIC_RANGE_END and src.function not in kept:
            continue
        e = kvm.kvm_cpuid_entry2.from_buffer_copy(bytes(src))
        if e.function == LEAF_FEATURES_EXT and e.index == 0:
            e.ebx &= ~(_L7_EBX_SGX | _L7_EBX_PT)
            e.ecx &= ~(_L7_ECX_KEYLOCKER | _L7_ECX_SGX_LC)
            e.edx &= ~(_L7_EDX_HYBRID | _L7_EDX_PCONFIG | _L7_EDX_ARCH_LBR)
            if not amx:
                e.edx &= ~_L7_EDX_AMX
        elif e.function == LEAF_FEATURES_EXT and e.index == 1:
            e.edx &= ~_L7_1_EDX_AVX10
            if not amx:
                e.eax &= ~_L7_1_EAX_AMX
        elif e.function == LEAF_XSAVE and not amx:
            if e.index == 0:
                e.eax &= ~XFEATURE_AMX
            elif 1 << e.index & XFEATURE_AMX:
                continue  # the size and offset of tile state the guest may not use
        out.append(e)
    highest = max((e.function for e in out if e.function < BASIC_RANGE_END), default=0)
    for e in out:
        if e.function == LEAF_MAX_BASIC:
            e.eax = min(e.eax, highest)
    return out
