"""Plain-data host measurements for each verdict, judged by the real `judge`.

The real probe decides which verdict this machine has; these samples let a test drive the same
code with the verdict this machine cannot reach (an emulating kvm_pvm host, or hardware-assisted
KVM on ordinary Intel/AMD hardware).
"""

from __future__ import annotations

from vmgui.host.probe import judge
from vmgui.model.host import (
    Calibration,
    HostCpu,
    HostStatus,
    KvmDevice,
    KvmModule,
    SpeedSample,
    Verdict,
)

CPU = HostCpu("GenuineIntel", "Core i7", 8, "vmx")
GUEST_CPU = HostCpu("AuthenticAMD", "EPYC", 2, "", True, "kvm", "docker")
USABLE = KvmDevice(present=True, readable=True, writable=True, opened=True, api_version=12)


def sample(where: str, ips: float) -> SpeedSample:
    """A 50 ms timed run of the two-instruction loop at `ips` instructions/s."""
    return SpeedSample(where, int(ips * 0.05 / 2), 0.05, int(ips * 0.05))


HOST = sample("host", 5e9)
#: Ring 0 about 1000x slower than native, ring 3 near native: a kvm_pvm host.
EMULATED_CALIBRATION = Calibration(HOST, sample("ring0", 4e6), sample("ring3", 4.8e9))
#: Both rings near native: VT-x/AMD-V.
HARDWARE_CALIBRATION = Calibration(HOST, sample("ring0", 4.5e9), sample("ring3", 4.9e9))


def measured_status(verdict: Verdict) -> HostStatus:
    """The HostStatus a probe would return on a host of `verdict` (EMULATED or HARDWARE_ASSISTED)."""
    if verdict is Verdict.EMULATED:
        cpu, module, calibration = GUEST_CPU, KvmModule("kvm_pvm"), EMULATED_CALIBRATION
    elif verdict is Verdict.HARDWARE_ASSISTED:
        cpu, module, calibration = CPU, KvmModule("kvm_intel", True), HARDWARE_CALIBRATION
    else:
        raise ValueError(f"no measured sample for {verdict}")
    j = judge(cpu, module, USABLE, calibration)
    assert j.verdict is verdict
    return HostStatus(j.verdict, j.headline, j.reason, j.advice, cpu, module, USABLE, calibration)
