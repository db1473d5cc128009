"""Host probe figures: calibration speed and stability, full probe and CLI wall time.

Run: .venv/bin/python bench/bench_host.py [runs]
Prints instructions/s for the native loop and guest rings 0/3, their ratios, how much they
vary between runs, and what the probe costs. Asserts only correctness (every run measured).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from vmgui.host.calibrate import calibrate
from vmgui.host.probe import probe_local

REPO = Path(__file__).resolve().parents[1]


def spread(values: list[float]) -> str:
    med = statistics.median(values)
    return f"median {med / 1e6:10,.1f} M/s   min {min(values) / 1e6:10,.1f}   max {max(values) / 1e6:10,.1f}"


def main(runs: int) -> None:
    host, ring0, ring3, r0_ratio, r3_ratio, seconds = [], [], [], [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        c = calibrate()
        seconds.append(time.perf_counter() - t0)
        assert c.error == "" and c.host and c.ring0 and c.ring3, c.error
        host.append(c.host.instructions_per_second)
        ring0.append(c.ring0.instructions_per_second)
        ring3.append(c.ring3.instructions_per_second)
        r0_ratio.append(c.ratio(c.ring0) or 0.0)
        r3_ratio.append(c.ratio(c.ring3) or 0.0)
    print(f"calibration, {runs} runs (instructions/s of a dec+jnz loop)")
    print(f"  host native   {spread(host)}")
    print(f"  guest ring 0  {spread(ring0)}")
    print(f"  guest ring 3  {spread(ring3)}")
    print(
        f"  ring 0 / host median {statistics.median(r0_ratio):.5f}  (1/{1 / statistics.median(r0_ratio):,.0f})"
    )
    print(f"  ring 3 / host median {statistics.median(r3_ratio):.3f}")
    print(
        f"  calibration time     median {statistics.median(seconds) * 1e3:.0f} ms, max {max(seconds) * 1e3:.0f} ms"
    )

    t0 = time.perf_counter()
    _, _, kvm, _ = probe_local(measure=False)
    print(
        f"probe without measurement  {(time.perf_counter() - t0) * 1e3:.0f} ms (usable={kvm.usable})"
    )

    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "vmgui.host.cli", "--json"],
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    print(
        f"vmgui host-check --json    {(time.perf_counter() - t0) * 1e3:.0f} ms wall (exit {proc.returncode})"
    )
    assert proc.returncode == 0


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
