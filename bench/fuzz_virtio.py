"""Long fuzz run of the virtio device models: >= 100,000 hostile-driver cases over real guest memory.

Same cases and invariants as tests/vmm/virtio/test_fuzz.py, just many more of them.
Usage: .venv/bin/python -m bench.fuzz_virtio [CASES]   (default 100000)
"""

from __future__ import annotations

import logging
import sys
import time

from hypothesis import HealthCheck, given, settings

from tests.vmm.virtio.fuzzing import DEVICES, FuzzCase, Rig, run_case
from tests.vmm.virtio.strategies import fuzz_cases


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    per_device = -(-total // len(DEVICES))
    logging.disable(logging.WARNING)  # every broken device logs once; 100k of them is noise
    rig = Rig()
    start = time.monotonic()
    try:
        for device in DEVICES:
            @settings(max_examples=per_device, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(fuzz_cases(device))
            def check(case: FuzzCase) -> None:
                run_case(rig, case)

            before = rig.cases
            t0 = time.monotonic()
            check()
            print(f"{device:7s} {rig.cases - before:7d} cases  {time.monotonic() - t0:6.1f} s",
                  flush=True)
    finally:
        rig.close()
    elapsed = time.monotonic() - start
    o = rig.outcomes
    print(f"fuzz_virtio: {rig.cases} cases in {elapsed:.1f} s ({rig.cases / elapsed:.0f}/s), "
          f"no invariant violated")
    print(f"outcomes: completed {o['completed']}, needs-reset {o['needs-reset']}, "
          f"idle {o['idle']}")
    assert rig.cases >= total


if __name__ == "__main__":
    main()
