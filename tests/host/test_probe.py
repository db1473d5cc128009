"""The verdict: pure judgement cases, and the full probe on this machine."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from tests.host.verdicts import (
    CPU,
    EMULATED_CALIBRATION,
    GUEST_CPU,
    HARDWARE_CALIBRATION,
    HOST,
    USABLE,
    measured_status,
    sample,
)
from tests.support import need_kvm
from vmgui.host.probe import HARDWARE_RATIO, emulation_warning, judge, probe_host_async
from vmgui.model.host import (
    Calibration,
    DomainCapabilities,
    HostStatus,
    KvmDevice,
    KvmModule,
    Verdict,
)

DENIED = KvmDevice(
    present=True,
    problem="permission denied opening /dev/kvm (owner group 'kvm', mode 0660)",
    fix="sudo usermod -aG kvm $USER, then log out and log in again",
)
TCG = DomainCapabilities("qemu:///session", "x86_64", domain_types=("qemu",))


def test_hardware_assisted_when_ring0_runs_near_native() -> None:
    j = judge(CPU, KvmModule("kvm_intel", nested=False), USABLE, HARDWARE_CALIBRATION)
    assert j.verdict is Verdict.HARDWARE_ASSISTED
    assert j.headline.startswith("Hardware-assisted")
    assert any("nested=N" in a for a in j.advice)


def test_emulated_when_ring0_is_a_thousand_times_slower() -> None:
    j = judge(GUEST_CPU, KvmModule("kvm_pvm"), USABLE, EMULATED_CALIBRATION)
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


def assert_emulated_warning(status: HostStatus) -> None:
    assert status.verdict is Verdict.EMULATED, status.reason
    warning = emulation_warning(status)
    assert warning.startswith("Guest kernel code is emulated on this computer (")
    assert "Domain type 'qemu' (TCG) is faster here." in warning


def test_full_probe_on_this_machine_takes_its_verdict_from_the_measurement() -> None:
    need_kvm()
    fetched: list[str] = []

    async def fetch(uri: str) -> DomainCapabilities:
        fetched.append(uri)
        return DomainCapabilities(uri, "x86_64", domain_types=("qemu",))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        status = asyncio.run(probe_host_async(connections=["a:///"], fetch=fetch, executor=pool))
    assert status.kvm.usable and status.can_run_vms
    assert status.calibration is not None and status.calibration.ring0 is not None
    assert status.reason.startswith("measured:")
    assert fetched == ["a:///"] and status.connections[0].uri == "a:///"
    # Whichever the CPU is: ring 0 either runs near native (VT-x/AMD-V) or is emulated.
    ratio = status.calibration.ratio(status.calibration.ring0)
    assert ratio is not None
    if status.verdict is Verdict.HARDWARE_ASSISTED:
        assert ratio >= HARDWARE_RATIO, status.reason
        assert emulation_warning(status) == ""
    else:
        assert ratio < HARDWARE_RATIO, status.reason
        assert_emulated_warning(status)


def test_emulated_status_warns_with_the_measured_speed() -> None:
    status = measured_status(Verdict.EMULATED)
    assert_emulated_warning(status)
    assert "(4.0 million instructions/s)" in emulation_warning(status)


def test_no_emulation_warning_when_hardware_assisted() -> None:
    assert emulation_warning(measured_status(Verdict.HARDWARE_ASSISTED)) == ""
