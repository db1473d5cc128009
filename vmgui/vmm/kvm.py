"""The KVM ioctl layer: /dev/kvm, VM and vCPU handles as thin ctypes wrappers (kvm-ioctls style).

Every ioctl but KVM_RUN goes through libc's ioctl via ctypes: integer arguments above 2**31
(KVM_SET_TSS_ADDR 0xfffbd000) overflow fcntl.ioctl. KVM_RUN, the one call per exit, is
`enter_guest` (see there). Both release the GIL during the call, so each vCPU thread runs the
guest while others run Python.

This module knows structures and ioctl numbers only; what an exit means is vcpu.py's business.
Structure layouts follow <linux/kvm.h> and <asm/kvm.h> for x86-64.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import sys
from collections.abc import Callable, Iterable, Mapping

# --------------------------------------------------------------------------------------------
# ioctl number encoding (asm-generic/ioctl.h)

_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
KVMIO = 0xAE


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


def _io(nr: int) -> int:
    return _ioc(_IOC_NONE, nr, 0)


def _iow(nr: int, struct: type[ctypes._CData] | int) -> int:
    size = struct if isinstance(struct, int) else ctypes.sizeof(struct)
    return _ioc(_IOC_WRITE, nr, size)


def _ior(nr: int, struct: type[ctypes._CData] | int) -> int:
    size = struct if isinstance(struct, int) else ctypes.sizeof(struct)
    return _ioc(_IOC_READ, nr, size)


def _iowr(nr: int, struct: type[ctypes._CData] | int) -> int:
    size = struct if isinstance(struct, int) else ctypes.sizeof(struct)
    return _ioc(_IOC_READ | _IOC_WRITE, nr, size)


# --------------------------------------------------------------------------------------------
# Constants

KVM_API_VERSION = 12
KVM_DEVICE = "/dev/kvm"

# Capabilities (KVM_CHECK_EXTENSION)
KVM_CAP_IRQCHIP = 0
KVM_CAP_HLT = 1
KVM_CAP_USER_MEMORY = 3
KVM_CAP_SET_TSS_ADDR = 4
KVM_CAP_EXT_CPUID = 7
KVM_CAP_NR_VCPUS = 9
KVM_CAP_NR_MEMSLOTS = 10
KVM_CAP_PIT = 11
KVM_CAP_IRQ_ROUTING = 25
KVM_CAP_IRQFD = 32
KVM_CAP_PIT2 = 33
KVM_CAP_IOEVENTFD = 36
KVM_CAP_SET_IDENTITY_MAP_ADDR = 37
KVM_CAP_MAX_VCPUS = 66
KVM_CAP_TSC_DEADLINE_TIMER = 72
KVM_CAP_SPLIT_IRQCHIP = 121
KVM_CAP_X2APIC_API = 129
KVM_CAP_IMMEDIATE_EXIT = 136
KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168
KVM_CAP_READONLY_MEM = 81
KVM_CAP_NESTED_STATE = 157
KVM_CAP_DIRTY_LOG_RING = 192

# Exit reasons (kvm_run.exit_reason)
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_IRQ_WINDOW_OPEN = 7
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_SET_TPR = 11
KVM_EXIT_TPR_ACCESS = 12
KVM_EXIT_NMI = 16
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24
KVM_EXIT_IOAPIC_EOI = 26
KVM_EXIT_X86_RDMSR = 29
KVM_EXIT_X86_WRMSR = 30
KVM_EXIT_X86_BUS_LOCK = 33
KVM_EXIT_NOTIFY = 37
KVM_EXIT_MEMORY_FAULT = 39

EXIT_REASON_NAMES: dict[int, str] = {
    v: k.removeprefix("KVM_EXIT_")
    for k, v in dict(globals()).items()
    if k.startswith("KVM_EXIT_") and isinstance(v, int)
}


def exit_reason_name(reason: int) -> str:
    return EXIT_REASON_NAMES.get(reason, f"EXIT_{reason}")


KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

# kvm_run.internal.suberror
KVM_INTERNAL_ERROR_EMULATION = 1
KVM_INTERNAL_ERROR_SIMUL_EX = 2
KVM_INTERNAL_ERROR_DELIVERY_EV = 3
KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4

INTERNAL_ERROR_NAMES = {
    KVM_INTERNAL_ERROR_EMULATION: "emulation failure",
    KVM_INTERNAL_ERROR_SIMUL_EX: "exception while delivering an exception",
    KVM_INTERNAL_ERROR_DELIVERY_EV: "exit during event delivery",
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: "unexpected exit reason",
}

# kvm_run.system_event.type
KVM_SYSTEM_EVENT_SHUTDOWN = 1
KVM_SYSTEM_EVENT_RESET = 2
KVM_SYSTEM_EVENT_CRASH = 3
KVM_SYSTEM_EVENT_WAKEUP = 4
KVM_SYSTEM_EVENT_SUSPEND = 5

# Memory region flags
KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1

# kvm_pit_config.flags
KVM_PIT_SPEAKER_DUMMY = 1

# kvm_irqfd.flags
KVM_IRQFD_FLAG_DEASSIGN = 1 << 0
KVM_IRQFD_FLAG_RESAMPLE = 1 << 1

# kvm_ioeventfd.flags
KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0
KVM_IOEVENTFD_FLAG_PIO = 1 << 1
KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2

# kvm_mp_state.mp_state
KVM_MP_STATE_RUNNABLE = 0
KVM_MP_STATE_UNINITIALIZED = 1
KVM_MP_STATE_INIT_RECEIVED = 2
KVM_MP_STATE_HALTED = 3
KVM_MP_STATE_SIPI_RECEIVED = 4

# --------------------------------------------------------------------------------------------
# Structures

u8, u16, u32, u64, s32 = (
    ctypes.c_uint8,
    ctypes.c_uint16,
    ctypes.c_uint32,
    ctypes.c_uint64,
    ctypes.c_int32,
)


class kvm_regs(ctypes.Structure):
    _fields_ = [
        (name, u64)
        for name in (
            *("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp"),
            *("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"),
        )
    ]


class kvm_segment(ctypes.Structure):
    _fields_ = [
        ("base", u64),
        ("limit", u32),
        ("selector", u16),
        ("type", u8),
        ("present", u8),
        ("dpl", u8),
        ("db", u8),
        ("s", u8),
        ("l", u8),
        ("g", u8),
        ("avl", u8),
        ("unusable", u8),
        ("padding", u8),
    ]


class kvm_dtable(ctypes.Structure):
    _fields_ = [("base", u64), ("limit", u16), ("padding", u16 * 3)]


KVM_NR_INTERRUPTS = 256


class kvm_sregs(ctypes.Structure):
    _fields_ = [
        ("cs", kvm_segment),
        ("ds", kvm_segment),
        ("es", kvm_segment),
        ("fs", kvm_segment),
        ("gs", kvm_segment),
        ("ss", kvm_segment),
        ("tr", kvm_segment),
        ("ldt", kvm_segment),
        ("gdt", kvm_dtable),
        ("idt", kvm_dtable),
        ("cr0", u64),
        ("cr2", u64),
        ("cr3", u64),
        ("cr4", u64),
        ("cr8", u64),
        ("efer", u64),
        ("apic_base", u64),
        ("interrupt_bitmap", u64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class kvm_fpu(ctypes.Structure):
    _fields_ = [
        ("fpr", (u8 * 16) * 8),
        ("fcw", u16),
        ("fsw", u16),
        ("ftwx", u8),
        ("pad1", u8),
        ("last_opcode", u16),
        ("last_ip", u64),
        ("last_dp", u64),
        ("xmm", (u8 * 16) * 16),
        ("mxcsr", u32),
        ("pad2", u32),
    ]


class kvm_msr_entry(ctypes.Structure):
    _fields_ = [("index", u32), ("reserved", u32), ("data", u64)]


class kvm_msrs(ctypes.Structure):
    """Header only; the entries follow (see `_msrs_type`)."""

    _fields_ = [("nmsrs", u32), ("pad", u32)]


class kvm_cpuid_entry2(ctypes.Structure):
    _fields_ = [
        ("function", u32),
        ("index", u32),
        ("flags", u32),
        ("eax", u32),
        ("ebx", u32),
        ("ecx", u32),
        ("edx", u32),
        ("padding", u32 * 3),
    ]


KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0


class kvm_cpuid2(ctypes.Structure):
    """Header only; the entries follow (see `_cpuid2_type`)."""

    _fields_ = [("nent", u32), ("padding", u32)]


class kvm_userspace_memory_region(ctypes.Structure):
    _fields_ = [
        ("slot", u32),
        ("flags", u32),
        ("guest_phys_addr", u64),
        ("memory_size", u64),
        ("userspace_addr", u64),
    ]


class kvm_irq_level(ctypes.Structure):
    _fields_ = [("irq", u32), ("level", u32)]


class kvm_pit_config(ctypes.Structure):
    _fields_ = [("flags", u32), ("pad", u32 * 15)]


class kvm_reinject_control(ctypes.Structure):
    _fields_ = [("pit_reinject", u8), ("reserved", u8 * 31)]


class kvm_irqfd(ctypes.Structure):
    _fields_ = [
        ("fd", u32),
        ("gsi", u32),
        ("flags", u32),
        ("resamplefd", u32),
        ("pad", u8 * 16),
    ]


class kvm_ioeventfd(ctypes.Structure):
    _fields_ = [
        ("datamatch", u64),
        ("addr", u64),
        ("len", u32),
        ("fd", s32),
        ("flags", u32),
        ("pad", u8 * 36),
    ]


class kvm_dirty_log(ctypes.Structure):
    _fields_ = [("slot", u32), ("padding1", u32), ("dirty_bitmap", u64)]


KVM_APIC_REG_SIZE = 0x400


class kvm_lapic_state(ctypes.Structure):
    _fields_ = [("regs", ctypes.c_char * KVM_APIC_REG_SIZE)]

    def get_reg(self, offset: int) -> int:
        """A 32-bit LAPIC register (offsets as in the SDM, e.g. 0x350 for LVT LINT0)."""
        return int.from_bytes(bytes(self)[offset : offset + 4], "little")

    def set_reg(self, offset: int, value: int) -> None:
        ctypes.memmove(ctypes.addressof(self) + offset, value.to_bytes(4, "little"), 4)


class kvm_mp_state(ctypes.Structure):
    _fields_ = [("mp_state", u32)]


class kvm_enable_cap(ctypes.Structure):
    _fields_ = [("cap", u32), ("flags", u32), ("args", u64 * 4), ("pad", u8 * 64)]


# --- struct kvm_run (the shared page each vCPU maps) ---


class kvm_run_io(ctypes.Structure):
    _fields_ = [
        ("direction", u8),
        ("size", u8),
        ("port", u16),
        ("count", u32),
        ("data_offset", u64),
    ]


class kvm_run_mmio(ctypes.Structure):
    _fields_ = [("phys_addr", u64), ("data", u8 * 8), ("len", u32), ("is_write", u8)]


class kvm_run_internal(ctypes.Structure):
    _fields_ = [("suberror", u32), ("ndata", u32), ("data", u64 * 16)]


class kvm_run_system_event(ctypes.Structure):
    _fields_ = [("type", u32), ("ndata", u32), ("data", u64 * 16)]


class kvm_run_fail_entry(ctypes.Structure):
    _fields_ = [("hardware_entry_failure_reason", u64), ("cpu", u32)]


class kvm_run_hw(ctypes.Structure):
    _fields_ = [("hardware_exit_reason", u64)]


class kvm_run_ex(ctypes.Structure):
    _fields_ = [("exception", u32), ("error_code", u32)]


class kvm_run_exit(ctypes.Union):
    _fields_ = [
        ("hw", kvm_run_hw),
        ("fail_entry", kvm_run_fail_entry),
        ("ex", kvm_run_ex),
        ("io", kvm_run_io),
        ("mmio", kvm_run_mmio),
        ("internal", kvm_run_internal),
        ("system_event", kvm_run_system_event),
        ("padding", ctypes.c_char * 256),
    ]


class kvm_run(ctypes.Structure):
    _fields_ = [
        ("request_interrupt_window", u8),
        ("immediate_exit", u8),
        ("padding1", u8 * 6),
        ("exit_reason", u32),
        ("ready_for_interrupt_injection", u8),
        ("if_flag", u8),
        ("flags", u16),
        ("cr8", u64),
        ("apic_base", u64),
        ("exit", kvm_run_exit),
        ("kvm_valid_regs", u64),
        ("kvm_dirty_regs", u64),
    ]


#: Byte offsets into the kvm_run page, for the hot exit path (struct.unpack_from on the mmap).
RUN_IMMEDIATE_EXIT = kvm_run.immediate_exit.offset
RUN_EXIT_REASON = kvm_run.exit_reason.offset
RUN_EXIT_UNION = kvm_run.exit.offset  # io: <BBHIQ, mmio: <Q8sIB at this offset

# --------------------------------------------------------------------------------------------
# ioctl numbers

KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_GET_SUPPORTED_CPUID = _iowr(0x05, kvm_cpuid2)
KVM_CREATE_VCPU = _io(0x41)
KVM_GET_DIRTY_LOG = _iow(0x42, kvm_dirty_log)
KVM_SET_USER_MEMORY_REGION = _iow(0x46, kvm_userspace_memory_region)
KVM_SET_TSS_ADDR = _io(0x47)
KVM_SET_IDENTITY_MAP_ADDR = _iow(0x48, u64)
KVM_CREATE_IRQCHIP = _io(0x60)
KVM_IRQ_LINE = _iow(0x61, kvm_irq_level)
KVM_IRQFD = _iow(0x76, kvm_irqfd)
KVM_CREATE_PIT2 = _iow(0x77, kvm_pit_config)
KVM_REINJECT_CONTROL = _io(0x71)  # takes a kvm_reinject_control pointer (<linux/kvm.h>)
KVM_IOEVENTFD = _iow(0x79, kvm_ioeventfd)
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ior(0x81, kvm_regs)
KVM_SET_REGS = _iow(0x82, kvm_regs)
KVM_GET_SREGS = _ior(0x83, kvm_sregs)
KVM_SET_SREGS = _iow(0x84, kvm_sregs)
KVM_GET_MSRS = _iowr(0x88, kvm_msrs)
KVM_SET_MSRS = _iow(0x89, kvm_msrs)
KVM_GET_FPU = _ior(0x8C, kvm_fpu)
KVM_SET_FPU = _iow(0x8D, kvm_fpu)
KVM_GET_LAPIC = _ior(0x8E, kvm_lapic_state)
KVM_SET_LAPIC = _iow(0x8F, kvm_lapic_state)
KVM_SET_CPUID2 = _iow(0x90, kvm_cpuid2)
KVM_GET_CPUID2 = _iowr(0x91, kvm_cpuid2)
KVM_GET_MP_STATE = _ior(0x98, kvm_mp_state)
KVM_SET_MP_STATE = _iow(0x99, kvm_mp_state)
KVM_ENABLE_CAP = _iow(0xA3, kvm_enable_cap)

# --------------------------------------------------------------------------------------------
# libc ioctl through ctypes (two prototypes: integer argument and pointer argument)

_libc = ctypes.CDLL(None, use_errno=True)
_ioctl_int = _libc["ioctl"]
_ioctl_int.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
_ioctl_int.restype = ctypes.c_int
_ioctl_ptr = _libc["ioctl"]
_ioctl_ptr.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_ioctl_ptr.restype = ctypes.c_int

_REQUEST_NAMES = {
    v: k
    for k, v in dict(globals()).items()
    if k.startswith("KVM_") and isinstance(v, int) and (v >> 8) & 0xFF == KVMIO
}


class KvmError(OSError):
    """A KVM operation failed; str() is one line a user can act on."""


def _raise(request: int, what: str | None = None) -> None:
    err = ctypes.get_errno()
    name = what or _REQUEST_NAMES.get(request, f"ioctl {request:#x}")
    raise KvmError(err, f"{name} failed: {os.strerror(err)}")


def ioctl_int(fd: int, request: int, arg: int = 0) -> int:
    """ioctl with an integer argument; returns the (non-negative) result or raises KvmError."""
    r = _ioctl_int(fd, request, arg)
    if r < 0:
        _raise(request)
    return int(r)


def ioctl_ptr(fd: int, request: int, obj: ctypes._CData | None) -> int:
    """ioctl with a pointer to a ctypes object; returns the result or raises KvmError."""
    r = _ioctl_ptr(fd, request, ctypes.addressof(obj) if obj is not None else None)
    if r < 0:
        _raise(request)
    return int(r)


# --------------------------------------------------------------------------------------------
# Variable-length structures

_cpuid2_types: dict[int, type[ctypes.Structure]] = {}


def _cpuid2_type(n: int) -> type[ctypes.Structure]:
    t = _cpuid2_types.get(n)
    if t is None:
        t = type(
            f"kvm_cpuid2_{n}",
            (ctypes.Structure,),
            {"_fields_": [("nent", u32), ("padding", u32), ("entries", kvm_cpuid_entry2 * n)]},
        )
        _cpuid2_types[n] = t
    return t


_msrs_types: dict[int, type[ctypes.Structure]] = {}


def _msrs_type(n: int) -> type[ctypes.Structure]:
    # Cached: making a ctypes type costs ~40 us, and boot sets MSRs one at a time (vcpu_setup).
    t = _msrs_types.get(n)
    if t is None:
        t = type(
            f"kvm_msrs_{n}",
            (ctypes.Structure,),
            {"_fields_": [("nmsrs", u32), ("pad", u32), ("entries", kvm_msr_entry * n)]},
        )
        _msrs_types[n] = t
    return t


def _copy_entry(e: kvm_cpuid_entry2) -> kvm_cpuid_entry2:
    c = kvm_cpuid_entry2()
    ctypes.memmove(ctypes.addressof(c), ctypes.addressof(e), ctypes.sizeof(c))
    return c


def dirty_pages(bitmap: bytes | bytearray | memoryview) -> list[int]:
    """Page indices set in a KVM dirty bitmap (bit i of little-endian u64 words = page i)."""
    pages: list[int] = []
    value = int.from_bytes(bitmap, "little")
    while value:
        low = value & -value
        pages.append(low.bit_length() - 1)
        value ^= low
    return pages


# --------------------------------------------------------------------------------------------
# Handles


class _Fd:
    fd: int

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> _Fd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to tell
            self.close()


class Kvm(_Fd):
    """The /dev/kvm system handle."""

    def __init__(self, path: str = KVM_DEVICE) -> None:
        self.fd = -1
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KvmError(
                errno.ENOENT,
                f"{path} does not exist: load the KVM module (modprobe kvm_intel or kvm_amd) "
                "and enable virtualization in the firmware",
            ) from None
        except PermissionError:
            raise KvmError(
                errno.EACCES,
                f"no permission to open {path}: add your user to the 'kvm' group "
                "(sudo usermod -aG kvm $USER) and log in again",
            ) from None
        except OSError as e:
            raise KvmError(e.errno or 0, f"cannot open {path}: {e.strerror}") from None
        version = self.api_version()
        if version != KVM_API_VERSION:
            self.close()
            raise KvmError(0, f"unsupported KVM API version {version} (need {KVM_API_VERSION})")

    def api_version(self) -> int:
        return ioctl_int(self.fd, KVM_GET_API_VERSION)

    def check_extension(self, cap: int) -> int:
        """0 when unsupported; otherwise a capability-specific positive value."""
        return ioctl_int(self.fd, KVM_CHECK_EXTENSION, cap)

    def vcpu_mmap_size(self) -> int:
        return ioctl_int(self.fd, KVM_GET_VCPU_MMAP_SIZE)

    def get_supported_cpuid(self) -> list[kvm_cpuid_entry2]:
        """CPUID leaves this host's KVM can expose (start of every vCPU's CPUID)."""
        n = 256  # more than any host has today: one ioctl, no E2BIG retry
        while True:
            buf = _cpuid2_type(n)()
            buf.nent = n
            r = _ioctl_ptr(self.fd, KVM_GET_SUPPORTED_CPUID, ctypes.addressof(buf))
            if r >= 0:
                return [_copy_entry(buf.entries[i]) for i in range(buf.nent)]  # type: ignore[attr-defined]
            if ctypes.get_errno() != errno.E2BIG or n >= 4096:
                _raise(KVM_GET_SUPPORTED_CPUID)
            n *= 2

    def create_vm(self) -> VmFd:
        return VmFd(ioctl_int(self.fd, KVM_CREATE_VM, 0), self)


class VmFd(_Fd):
    """One VM: memory slots, in-kernel irqchip/PIT, interrupt lines, eventfds, vCPUs."""

    def __init__(self, fd: int, kvm: Kvm) -> None:
        self.fd = fd
        self.kvm = kvm
        self._mmap_size = kvm.vcpu_mmap_size()

    def check_extension(self, cap: int) -> int:
        return ioctl_int(self.fd, KVM_CHECK_EXTENSION, cap)

    def enable_cap(self, cap: int, *args: int, flags: int = 0) -> None:
        c = kvm_enable_cap(cap=cap, flags=flags)
        for i, a in enumerate(args[:4]):
            c.args[i] = a
        ioctl_ptr(self.fd, KVM_ENABLE_CAP, c)

    def set_user_memory_region(
        self, slot: int, guest_addr: int, size: int, host_addr: int, flags: int = 0
    ) -> None:
        """Map host memory at guest_addr (size 0 deletes the slot); flags: KVM_MEM_*."""
        region = kvm_userspace_memory_region(slot, flags, guest_addr, size, host_addr)
        ioctl_ptr(self.fd, KVM_SET_USER_MEMORY_REGION, region)

    def create_irqchip(self) -> None:
        """In-kernel PIC pair + IOAPIC + per-vCPU LAPIC (before creating vCPUs)."""
        ioctl_int(self.fd, KVM_CREATE_IRQCHIP)

    def create_pit2(self, flags: int = KVM_PIT_SPEAKER_DUMMY) -> None:
        """In-kernel i8254 PIT on IRQ0; SPEAKER_DUMMY also answers port 0x61."""
        ioctl_ptr(self.fd, KVM_CREATE_PIT2, kvm_pit_config(flags=flags))

    def set_pit_reinject(self, reinject: bool) -> None:
        """Whether the PIT holds each tick until the guest acknowledged the previous one
        (QEMU's lost_tick_policy=delay) or lets it go (discard)."""
        ioctl_ptr(self.fd, KVM_REINJECT_CONTROL, kvm_reinject_control(pit_reinject=int(reinject)))

    def set_tss_addr(self, addr: int) -> None:
        """Three pages KVM needs for real-mode emulation on Intel; must not overlap RAM."""
        ioctl_int(self.fd, KVM_SET_TSS_ADDR, addr)

    def set_identity_map_addr(self, addr: int) -> None:
        ioctl_ptr(self.fd, KVM_SET_IDENTITY_MAP_ADDR, u64(addr))

    def irq_line(self, irq: int, level: bool) -> None:
        """Drive a GSI (PIC + IOAPIC input) to `level`; edge = raise then lower."""
        ioctl_ptr(self.fd, KVM_IRQ_LINE, kvm_irq_level(irq, 1 if level else 0))

    def irqfd(
        self, fd: int, gsi: int, *, resample_fd: int | None = None, deassign: bool = False
    ) -> None:
        """Writing to eventfd `fd` raises `gsi` in the kernel, with no exit to userspace."""
        flags = KVM_IRQFD_FLAG_DEASSIGN if deassign else 0
        if resample_fd is not None:
            flags |= KVM_IRQFD_FLAG_RESAMPLE
        ioctl_ptr(self.fd, KVM_IRQFD, kvm_irqfd(fd, gsi, flags, resample_fd or 0))

    def ioeventfd(
        self,
        fd: int,
        addr: int,
        length: int,
        *,
        pio: bool = False,
        datamatch: int | None = None,
        deassign: bool = False,
    ) -> None:
        """Guest writes of `length` bytes to addr signal eventfd `fd` instead of exiting."""
        flags = (KVM_IOEVENTFD_FLAG_PIO if pio else 0) | (
            KVM_IOEVENTFD_FLAG_DEASSIGN if deassign else 0
        )
        if datamatch is not None:
            flags |= KVM_IOEVENTFD_FLAG_DATAMATCH
        ev = kvm_ioeventfd(datamatch=datamatch or 0, addr=addr, len=length, fd=fd, flags=flags)
        ioctl_ptr(self.fd, KVM_IOEVENTFD, ev)

    def get_dirty_log(self, slot: int, size: int) -> bytearray:
        """Bitmap of pages written in a KVM_MEM_LOG_DIRTY_PAGES slot since the last call.

        One bit per 4 KiB page of the slot's `size` bytes, in little-endian u64 words; the
        kernel clears the log as it returns it. See `dirty_pages` to turn it into indices.
        """
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        nbytes = (pages + 63) // 64 * 8
        buf = (ctypes.c_char * nbytes)()
        log = kvm_dirty_log(slot=slot, dirty_bitmap=ctypes.addressof(buf))
        ioctl_ptr(self.fd, KVM_GET_DIRTY_LOG, log)
        return bytearray(buf.raw)

    def create_vcpu(self, vcpu_id: int) -> VcpuFd:
        return VcpuFd(ioctl_int(self.fd, KVM_CREATE_VCPU, vcpu_id), vcpu_id, self._mmap_size)


#: Python releases from which fcntl.ioctl retries a call that failed with EINTR (CPython
#: gh-132742). KVM_RUN must come back with EINTR after `immediate_exit` + a signal kick so
#: pause/quit work; a retry would spin on the EINTR that `immediate_exit` keeps returning.
FCNTL_IOCTL_RETRIES_EINTR = (3, 14)


def _ctypes_enter_guest() -> Callable[[int, int], int]:
    """ioctl(fd, request, 0) through ctypes, raising OSError like fcntl.ioctl."""
    libc = ctypes.CDLL(None, use_errno=True)
    call = libc["ioctl"]
    call.restype = ctypes.c_int

    def enter(fd: int, request: int) -> int:
        if (ret := call(fd, request, 0)) < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return int(ret)

    return enter


#: enter_guest(fd, KVM_RUN): the one system call per exit, so its cost is the VMM's floor.
#: fcntl.ioctl without a third argument passes 0 (KVM_RUN refuses anything else) and costs
#: ~0.1 us over a bare system call, a ctypes call ~0.23 us (timed on KVM_CHECK_EXTENSION in a
#: loop: 0.31 vs 0.45 us per call, getppid 0.22 us). Where fcntl.ioctl retries EINTR, ctypes.
enter_guest: Callable[[int, int], int] = (
    fcntl.ioctl if sys.version_info < FCNTL_IOCTL_RETRIES_EINTR else _ctypes_enter_guest()
)


def run_interrupted(e: OSError) -> int:
    """KVM_EXIT_INTR for a KVM_RUN that a kick ended (EINTR: a signal or `immediate_exit`;
    EAGAIN: not runnable yet); anything else is a KvmError."""
    if e.errno in (errno.EINTR, errno.EAGAIN):
        return KVM_EXIT_INTR
    err = e.errno or errno.EIO
    raise KvmError(err, f"KVM_RUN failed: {os.strerror(err)}") from None


class VcpuFd(_Fd):
    """One vCPU: register state and KVM_RUN with its shared kvm_run page.

    `run_mmap` is the raw kvm_run page (for struct.unpack_from on the hot path), `run_state`
    a ctypes kvm_run view of it (for readable access off the hot path).
    """

    def __init__(self, fd: int, vcpu_id: int, mmap_size: int) -> None:
        self.fd = fd
        self.vcpu_id = vcpu_id
        self.run_mmap = mmap.mmap(fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.run_state = kvm_run.from_buffer(self.run_mmap)

    def close(self) -> None:
        if getattr(self, "run_mmap", None) is not None and not self.run_mmap.closed:
            del self.run_state
            self.run_mmap.close()
        super().close()

    def run(self) -> int:
        """Enter the guest until the next exit; return kvm_run.exit_reason.

        EINTR (a signal, or `immediate_exit` set) returns KVM_EXIT_INTR rather than raising:
        that is how pause/quit kick a vCPU thread out of the guest.
        """
        try:
            enter_guest(self.fd, KVM_RUN)
        except OSError as e:
            return run_interrupted(e)
        return int(self.run_state.exit_reason)

    @property
    def immediate_exit(self) -> bool:
        return bool(self.run_mmap[RUN_IMMEDIATE_EXIT])

    @immediate_exit.setter
    def immediate_exit(self, value: bool) -> None:
        """While set, KVM_RUN returns EINTR at once (set it, then signal the vCPU thread)."""
        self.run_mmap[RUN_IMMEDIATE_EXIT] = 1 if value else 0

    def get_regs(self) -> kvm_regs:
        regs = kvm_regs()
        ioctl_ptr(self.fd, KVM_GET_REGS, regs)
        return regs

    def set_regs(self, regs: kvm_regs) -> None:
        ioctl_ptr(self.fd, KVM_SET_REGS, regs)

    def get_sregs(self) -> kvm_sregs:
        sregs = kvm_sregs()
        ioctl_ptr(self.fd, KVM_GET_SREGS, sregs)
        return sregs

    def set_sregs(self, sregs: kvm_sregs) -> None:
        ioctl_ptr(self.fd, KVM_SET_SREGS, sregs)

    def get_fpu(self) -> kvm_fpu:
        fpu = kvm_fpu()
        ioctl_ptr(self.fd, KVM_GET_FPU, fpu)
        return fpu

    def set_fpu(self, fpu: kvm_fpu) -> None:
        ioctl_ptr(self.fd, KVM_SET_FPU, fpu)

    def set_cpuid2(self, entries: Iterable[kvm_cpuid_entry2]) -> None:
        items = list(entries)
        buf = _cpuid2_type(len(items))()
        buf.nent = len(items)
        for i, e in enumerate(items):
            buf.entries[i] = e  # type: ignore[attr-defined]
        ioctl_ptr(self.fd, KVM_SET_CPUID2, buf)

    def get_cpuid2(self, max_entries: int = 256) -> list[kvm_cpuid_entry2]:
        buf = _cpuid2_type(max_entries)()
        buf.nent = max_entries
        ioctl_ptr(self.fd, KVM_GET_CPUID2, buf)
        return [_copy_entry(buf.entries[i]) for i in range(buf.nent)]  # type: ignore[attr-defined]

    def get_msrs(self, indices: Iterable[int]) -> dict[int, int]:
        """Values of the MSRs KVM could read (unknown ones are left out)."""
        idx = list(indices)
        buf = _msrs_type(len(idx))()
        buf.nmsrs = len(idx)
        for i, index in enumerate(idx):
            buf.entries[i].index = index  # type: ignore[attr-defined]
        n = ioctl_ptr(self.fd, KVM_GET_MSRS, buf)
        return {buf.entries[i].index: buf.entries[i].data for i in range(n)}  # type: ignore[attr-defined]

    def set_msrs(self, values: Mapping[int, int]) -> int:
        """Set MSRs in order; returns how many were set (KVM stops at the first it rejects)."""
        buf = _msrs_type(len(values))()
        buf.nmsrs = len(values)
        for i, (index, data) in enumerate(values.items()):
            buf.entries[i].index = index  # type: ignore[attr-defined]
            buf.entries[i].data = data  # type: ignore[attr-defined]
        return ioctl_ptr(self.fd, KVM_SET_MSRS, buf)

    def get_lapic(self) -> kvm_lapic_state:
        state = kvm_lapic_state()
        ioctl_ptr(self.fd, KVM_GET_LAPIC, state)
        return state

    def set_lapic(self, state: kvm_lapic_state) -> None:
        ioctl_ptr(self.fd, KVM_SET_LAPIC, state)

    def get_mp_state(self) -> int:
        state = kvm_mp_state()
        ioctl_ptr(self.fd, KVM_GET_MP_STATE, state)
        return int(state.mp_state)

    def set_mp_state(self, mp_state: int) -> None:
        ioctl_ptr(self.fd, KVM_SET_MP_STATE, kvm_mp_state(mp_state))
