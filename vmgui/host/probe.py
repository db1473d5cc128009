"""The host probe: gather every fact, measure speed, and judge once for CLI and GUI alike.

`judge` is pure (facts in, verdict and advice out); `probe_local` does the blocking work and
`probe_host_async` runs it in an executor, alongside the libvirt queries, so no caller blocks
an event loop. The host layer sits below the backends, so the libvirt query comes in as a
`CapsFetcher` (callers pass `vmgui.backends.libvirt.domcaps.fetch_domain_capabilities`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmgui.host.calibrate import calibrate
from vmgui.host.cpuinfo import read_cpu, read_kvm_module
from vmgui.host.kvm_check import check_kvm
from vmgui.model.host import (
    Calibration,
    DomainCapabilities,
    HostCpu,
    HostStatus,
    KvmDevice,
    KvmModule,
    Verdict,
)

CapsFetcher = Callable[[str], Awaitable[DomainCapabilities]]

#: Ring-0 guest speed, as a fraction of native, above which execution is hardware-assisted.
#: Hardware virtualization runs this loop at ~1.0; instruction emulation at ~0.001.
HARDWARE_RATIO = 0.1
#: Fallback when the native timing failed: instructions/s no emulator reaches.
HARDWARE_IPS = 300e6

TCG_ADVICE = (
    "For full guests use software emulation through QEMU's TCG instead (a libvirt VM with "
    "domain type 'qemu'): on such a host it boots a Linux guest to its init in about 4 s, "
    "while the emulated KVM path cannot boot a stock Linux kernel at all."
)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    headline: str
    reason: str
    advice: tuple[str, ...]


def millions(ips: float) -> str:
    """Instructions per second in words people read ("1.2 million", "4,800 million")."""
    m = ips / 1e6
    return f"{m:,.1f} million" if m < 100 else f"{m:,.0f} million"


def percent(ratio: float) -> str:
    """A speed ratio for people; timing noise can push a native run past 100%."""
    if ratio >= 0.8:
        return "about native speed"
    return f"{ratio * 100:.2g}%" if ratio < 0.1 else f"{ratio * 100:.0f}%"


def _relative(ratio: float) -> str:
    text = percent(ratio)
    return text if "native" in text else f"{text} of this CPU's native speed"


def judge(
    cpu: HostCpu,
    module: KvmModule,
    kvm: KvmDevice,
    calibration: Calibration | None,
    connections: Sequence[DomainCapabilities] = (),
) -> Judgement:
    """Verdict, one-line headline, the evidence behind it, and what to do."""
    tcg_conns = [c.uri for c in connections if "qemu" in c.domain_types]
    if not kvm.usable:
        advice = [kvm.fix] if kvm.fix else []
        if tcg_conns:
            advice.append(
                f"Until then, libvirt ({', '.join(tcg_conns)}) can still run guests with "
                "domain type 'qemu' (TCG software emulation, slower)."
            )
        if not kvm.present:
            state = "missing"
        else:
            state = "opened but unusable" if kvm.opened else "present but cannot be opened"
        evidence = (
            f"checked: {kvm.path} {state}; kvm module: {module.name or 'none loaded'}; "
            f"CPU virtualization flag: {cpu.virt_extension or 'none (no vmx/svm)'}"
        )
        return Judgement(
            Verdict.UNAVAILABLE,
            f"VMs cannot run here: {kvm.problem}",
            evidence,
            tuple(advice),
        )
    ring0 = calibration.ring0 if calibration else None
    if calibration is None:  # /dev/kvm is usable: the measurement was skipped on purpose
        return Judgement(
            Verdict.UNKNOWN_SPEED,
            "VMs can run here; their speed was not measured (--no-measure)",
            "speed measurement: skipped",
            (),
        )
    if ring0 is None:
        return Judgement(
            Verdict.UNKNOWN_SPEED,
            "VMs can run here; their speed is unknown (the measurement failed)",
            f"speed measurement: {calibration.error or 'no result'}",
            (),
        )
    ips = ring0.instructions_per_second
    ratio = calibration.ratio(ring0)
    hardware = ratio >= HARDWARE_RATIO if ratio is not None else ips >= HARDWARE_IPS
    of_host = f" ({_relative(ratio)})" if ratio is not None else ""
    ring3 = calibration.ring3
    ring3_ratio = calibration.ratio(ring3)
    ring3_note = ""
    if ring3 is not None:
        r3 = f" ({_relative(ring3_ratio)})" if ring3_ratio is not None else ""
        ring3_note = (
            f"; guest user-mode (ring-3) code ran at "
            f"{millions(ring3.instructions_per_second)} instructions/s{r3}"
        )
    reason = (
        f"measured: guest kernel-mode (ring-0) code ran at {millions(ips)} instructions/s"
        f"{of_host}{ring3_note}"
    )
    if hardware:
        advice = ["Use domain type 'kvm' for libvirt VMs; the built-in VMM runs at full speed."]
        if module.nested is False:
            advice.append(f"Nested virtualization is off ({module.name} nested=N).")
        return Judgement(
            Verdict.HARDWARE_ASSISTED,
            "Hardware-assisted: VMs run at full speed here",
            reason,
            tuple(advice),
        )
    advice = [
        "Guest kernel code is emulated instruction by instruction here, so a full operating "
        "system under KVM (built-in VMM or libvirt type 'kvm') will be very slow.",
        TCG_ADVICE,
    ]
    if cpu.hypervisor or cpu.hypervisor_flag:
        under = f" ({cpu.hypervisor})" if cpu.hypervisor else ""
        via = f" and /dev/kvm comes from {module.name}" if module.name else ""
        advice.append(
            f"This computer is itself a virtual machine{under}{via}; for hardware-assisted "
            "guests, enable nested virtualization (VT-x/AMD-V) for it in the outer hypervisor."
        )
    return Judgement(
        Verdict.EMULATED,
        f"Emulated: {millions(ips)} instructions/s in guest kernel mode -- "
        "guests will be very slow",
        reason,
        tuple(advice),
    )


def emulation_warning(status: HostStatus) -> str:
    """The sentence the new-VM wizard and VM start show for KVM guests ("" = nothing to say)."""
    if status.verdict is not Verdict.EMULATED or status.calibration is None:
        return ""
    ring0 = status.calibration.ring0
    speed = f" ({millions(ring0.instructions_per_second)} instructions/s)" if ring0 else ""
    return (
        f"Guest kernel code is emulated on this computer{speed}: a KVM guest will be very slow "
        "and a stock Linux kernel cannot boot. Domain type 'qemu' (TCG) is faster here."
    )


def _assemble(
    cpu: HostCpu,
    module: KvmModule,
    kvm: KvmDevice,
    calibration: Calibration | None,
    connections: Sequence[DomainCapabilities],
) -> HostStatus:
    j = judge(cpu, module, kvm, calibration, connections)
    return HostStatus(
        verdict=j.verdict,
        headline=j.headline,
        reason=j.reason,
        advice=j.advice,
        cpu=cpu,
        module=module,
        kvm=kvm,
        calibration=calibration,
        connections=tuple(connections),
    )


def probe_local(
    kvm_path: str = "/dev/kvm", root: Path = Path("/"), measure: bool = True
) -> tuple[HostCpu, KvmModule, KvmDevice, Calibration | None]:
    """Blocking (~0.2 s with `measure`): CPU, module, /dev/kvm and the speed calibration."""
    cpu = read_cpu(root)
    module = read_kvm_module(root)
    kvm = check_kvm(cpu, module, kvm_path)
    calibration = calibrate(kvm_path) if measure and kvm.usable else None
    return cpu, module, kvm, calibration


async def probe_host_async(
    kvm_path: str = "/dev/kvm",
    connections: Sequence[str] = (),
    fetch: CapsFetcher | None = None,
    measure: bool = True,
    executor: concurrent.futures.Executor | None = None,
) -> HostStatus:
    """The full probe; local checks run in `executor` while `fetch` queries each connection."""
    if connections and fetch is None:
        raise ValueError("connections given without a capabilities fetcher")
    loop = asyncio.get_running_loop()
    local = loop.run_in_executor(executor, probe_local, kvm_path, Path("/"), measure)
    caps = await asyncio.gather(*(fetch(uri) for uri in connections)) if fetch else []
    cpu, module, kvm, calibration = await local
    return _assemble(cpu, module, kvm, calibration, caps)
