"""The verdict: pure judgement cases, and the full probe on this machine."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from tests.support import need_kvm
from vmgui.host.probe import emulation_warning, judge, probe_host_async
from vmgui.model.host import (
    Calibration,
    DomainCapabilities,
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
DENIED = KvmDevice(
    present=True,
    problem="permission denied opening /dev/kvm (owner group 'kvm', mode 0660)",
    fix="sudo usermod -aG kvm $USER, then log out and log in again",
)
TCG = DomainCapabilities("qemu:///session", "x86_64", domain_types=("qemu",))


def sample(where: str, ips: float) -> SpeedSample:
    return SpeedSample(where, int(ips * 0.05 / 2), 0.05, int(ips * 0.05))


HOST = sample("host", 5e9)


def test_hardware_assisted_when_ring0_runs_near_native() -> None:
    c = Calibration(HOST, sample("ring0", 4.5e9), sample("ring3", 4.9e9))
    j = judge(CPU, KvmModule("kvm_intel", nested=False), USABLE, c)
    assert j.verdict is Verdict.HARDWARE_ASSISTED
    assert j.headline.startswith("Hardware-assisted")
    assert any("nested=N" in a for a in j.advice)


def test_emulated_when_ring0_is_a_thousand_times_slower() -> None:
    c = Calibration(HOST, sample("ring0", 4e6), sample("ring3", 4.8e9))
    j = judge(GUEST_CPU, KvmModule("kvm_pvm"), USABLE, c)
    assert j.verdict is Verdict.EMULATED
    assert j.headline == (
        "Emulated: 4.0 million instructions/s in guest kernel mode -- guests will be very slow"
    )
    assert "0.08% of this CPU's native speed" in j.reason and "about native speed" in j.reason
    text = " ".join(j.advice)
    assert "TCG" in text and "type 'qemu'" in text and "about 4 s" in text
    assert "cannot boot a stock Linux kernel" in text and "kvm_pvm" in text


def test_without_native_timing_falls_back_to_absolute_speed() -> None:
    fast = judge(CPU, KvmModule(), USABLE, Calibration(None, sample("ring0", 2e9)))
    slow = judge(CPU, KvmModule(), USABLE, Calibration(None, sample("ring0", 3e6)))
    assert (fast.verdict, slow.verdict) == (Verdict.HARDWARE_ASSISTED, Verdict.EMULATED)


def test_unavailable_gives_the_fix_and_the_tcg_way_out() -> None:
    j = judge(CPU, KvmModule("kvm_intel"), DENIED, None, [TCG])
    assert j.verdict is Verdict.UNAVAILABLE
    assert j.headline == f"VMs cannot run here: {DENIED.problem}"
    assert j.advice[0] == DENIED.fix and "qemu:///session" in j.advice[1]
    assert j.reason == (
        "checked: /dev/kvm present but cannot be opened; kvm module: kvm_intel; "
        "CPU virtualization flag: vmx"
    )


def test_failed_measurement_is_unknown_speed() -> None:
    j = judge(CPU, KvmModule(), USABLE, Calibration(HOST, error="ring-0 guest stopped"))
    assert j.verdict is Verdict.UNKNOWN_SPEED and "ring-0 guest stopped" in j.reason


def test_connections_need_a_fetcher() -> None:
    with pytest.raises(ValueError, match="fetcher"):
        asyncio.run(probe_host_async(connections=["test:///default"], measure=False))


def test_full_probe_on_this_machine_is_emulated_from_the_measurement() -> None:
    need_kvm()
    fetched: list[str] = []

    async def fetch(uri: str) -> DomainCapabilities:
        fetched.append(uri)
        return DomainCapabilities(uri, "x86_64", domain_types=("qemu",))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        status = asyncio.run(probe_host_async(connections=["a:///"], fetch=fetch, executor=pool))
    assert status.kvm.usable and status.can_run_vms
    assert status.verdict is Verdict.EMULATED, status.reason
    assert status.calibration is not None and status.calibration.ring0 is not None
    assert status.reason.startswith("measured:")
    assert fetched == ["a:///"] and status.connections[0].uri == "a:///"
    warning = emulation_warning(status)
    assert warning.startswith("Guest kernel code is emulated on this computer (")
    assert "Domain type 'qemu' (TCG) is faster here." in warning


def test_no_emulation_warning_when_hardware_assisted() -> None:
    c = Calibration(HOST, sample("ring0", 4.5e9), sample("ring3", 4.9e9))
    j = judge(CPU, KvmModule("kvm_intel"), USABLE, c)
    status = HostStatus(j.verdict, j.headline, j.reason, j.advice, calibration=c)
    assert emulation_warning(status) == ""
