"""The speed calibration through the VMM's real KVM layer, and its embedded machine code."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import assemble, need_kvm
from vmgui.host import calibrate as cal
from vmgui.host.probe import HARDWARE_RATIO


def test_embedded_guest_code_matches_its_source(tmp_path: Path) -> None:
    assert assemble(cal.GUEST_ASM, tmp_path) == cal.GUEST_CODE


def test_embedded_host_code_matches_its_source(tmp_path: Path) -> None:
    assert assemble(cal.HOST_ASM, tmp_path) == cal.HOST_CODE


def test_host_loop_runs_natively() -> None:
    sample = cal.measure_host(target=0.01)
    assert sample.where == "host" and sample.iterations >= cal.FIRST_ITERATIONS
    assert sample.instructions_per_second > 100e6  # any CPU of this century


#: Generous "it terminates" bound for a whole calibration: 3 subjects x REPEATS runs of
#: TARGET_SECONDS each, plus sizing runs and VM setup, with ample room for a loaded machine.
CALIBRATION_BUDGET_SECONDS = 3 * cal.REPEATS * cal.TARGET_SECONDS * 50


def test_this_machine_runs_ring3_natively_and_ring0_as_its_kvm_does() -> None:
    """Ring 3 always runs natively; ring 0 runs near native (VT-x/AMD-V) or is emulated
    (kvm_pvm): the measurement says which, and the two are far apart, never in between."""
    need_kvm()
    t0 = time.perf_counter()
    result = cal.calibrate()
    elapsed = time.perf_counter() - t0
    assert result.error == ""
    assert result.host and result.ring0 and result.ring3
    ring0, ring3 = result.ratio(result.ring0), result.ratio(result.ring3)
    assert ring0 is not None and ring3 is not None
    assert ring3 > 0.3, f"ring 3 ran at only {ring3:.1%} of native"
    if ring0 >= HARDWARE_RATIO:  # hardware-assisted
        assert ring0 > 0.3, f"ring 0 ran at only {ring0:.1%} of native"
        assert result.ring0.instructions_per_second > 100e6
    else:  # emulated
        assert ring0 < 0.01, f"ring 0 ran at {ring0:.3%} of native: neither native nor emulated"
        assert result.ring0.instructions_per_second < 50e6
    assert elapsed < CALIBRATION_BUDGET_SECONDS, f"calibration took {elapsed:.2f} s"


def test_missing_device_is_reported_not_raised(tmp_path: Path) -> None:
    result = cal.calibrate(str(tmp_path / "nokvm"), target=0.005)
    assert result.ring0 is None and result.ring3 is None
    assert "cannot create the calibration VM" in result.error
    assert "does not exist" in result.error
    assert result.host is not None
