"""What the host probe found: plain data shared by `vmgui host-check` and the "This computer" page.

Everything here is a fact that was read or measured; the judgement (verdict, advice) is made once
by `vmgui.host.probe` so the CLI and the GUI can never disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostResources:
    """Memory and logical CPUs of the machine a connection runs its VMs on."""

    memory_mib: int
    cpus: int


class Verdict(enum.Enum):
    """Can guests run here, and how fast? Values are the stable JSON words."""

    HARDWARE_ASSISTED = "hardware-assisted"
    EMULATED = "emulated"  # /dev/kvm works, but guest kernel code is emulated (slow)
    UNKNOWN_SPEED = "unknown-speed"  # /dev/kvm works, the speed measurement failed
    UNAVAILABLE = "unavailable"  # no usable /dev/kvm: built-in VMs cannot run


@dataclass(frozen=True)
class HostCpu:
    """The host's CPU as /proc/cpuinfo describes it, plus the hypervisor we run under (if any).

    (Not the VMM's per-vCPU `vmgui.vmm.control.CpuInfo`: that is one guest CPU's thread.)
    """

    vendor: str = ""  # "GenuineIntel", "AuthenticAMD", ...
    model_name: str = ""
    logical_cpus: int = 0
    virt_extension: str = ""  # "vmx" (Intel VT-x), "svm" (AMD-V) or "" (none visible)
    hypervisor_flag: bool = False  # the CPUID "hypervisor" bit: we are a guest ourselves
    hypervisor: str = ""  # which one, e.g. "kvm", "vmware", "microsoft"; "" when unknown/none
    container: str = ""  # e.g. "docker", "lxc"; "" when none


@dataclass(frozen=True)
class KvmModule:
    """The loaded kernel module that provides /dev/kvm."""

    name: str = ""  # "kvm_intel", "kvm_amd", another (e.g. "kvm_pvm"), or "" if none loaded
    nested: bool | None = None  # kvm_intel/kvm_amd "nested" parameter; None when not applicable


@dataclass(frozen=True)
class KvmDevice:
    """/dev/kvm as this user sees it."""

    path: str = "/dev/kvm"
    present: bool = False
    readable: bool = False
    writable: bool = False
    opened: bool = False  # an O_RDWR open really succeeded (ACLs, LSMs, devices cgroup included)
    api_version: int | None = None
    #: KVM_CHECK_EXTENSION results by capability name (0 = unsupported; >0 may be a count).
    capabilities: dict[str, int] = field(default_factory=dict)
    problem: str = ""  # one line: why it cannot be used ("" when usable)
    fix: str = ""  # one line: the exact command or step that fixes `problem`

    @property
    def usable(self) -> bool:
        return self.opened and not self.problem


@dataclass(frozen=True)
class SpeedSample:
    """One timed run of the calibration loop."""

    where: str  # "host", "ring0", "ring3"
    iterations: int
    seconds: float
    instructions: int  # instructions retired by the loop (iterations x loop length)

    @property
    def instructions_per_second(self) -> float:
        return self.instructions / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Calibration:
    """Guest execution speed measured through KVM, against the same loop run natively."""

    host: SpeedSample | None = None
    ring0: SpeedSample | None = None
    ring3: SpeedSample | None = None
    error: str = ""  # why (part of) the measurement is missing

    def ratio(self, sample: SpeedSample | None) -> float | None:
        """Guest speed as a fraction of native host speed (1.0 = as fast as the host)."""
        if sample is None or self.host is None or self.host.instructions_per_second <= 0:
            return None
        return sample.instructions_per_second / self.host.instructions_per_second


@dataclass(frozen=True)
class DomainCapabilities:
    """One libvirt connection's ability to run x86 guests (from getCapabilities/DomainCapabilities)."""

    uri: str
    arch: str = ""
    emulator: str = ""
    domain_types: tuple[str, ...] = ()  # e.g. ("qemu", "kvm"): "kvm" = hardware-assisted
    machines: tuple[str, ...] = ()  # machine types, aliases ("pc", "q35") first
    firmware: tuple[str, ...] = ()  # "bios" plus any of "efi" and loader image paths
    max_vcpus: int = 0
    error: str = ""  # one line when the connection could not be queried

    @property
    def kvm(self) -> bool:
        return "kvm" in self.domain_types


@dataclass(frozen=True)
class HostStatus:
    """The whole answer to "can this computer run VMs, and how fast?"."""

    verdict: Verdict
    headline: str  # one sentence, verdict first
    reason: str  # why the verdict (what evidence decided it)
    advice: tuple[str, ...] = ()
    cpu: HostCpu = field(default_factory=HostCpu)
    module: KvmModule = field(default_factory=KvmModule)
    kvm: KvmDevice = field(default_factory=KvmDevice)
    calibration: Calibration | None = None
    connections: tuple[DomainCapabilities, ...] = ()

    @property
    def can_run_vms(self) -> bool:
        """True when the built-in VMM can run guests at all (fast or slow)."""
        return self.verdict is not Verdict.UNAVAILABLE
