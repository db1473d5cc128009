"""One stats tick (getAllDomainStats + conversion) and one full listing for 1,000 VMs.

Uses libvirt's test:/// driver with a generated 1,000-domain node (750 active), through the real
LibvirtBackend on a plain asyncio loop. Prints figures; asserts only that the numbers are right.
Issue 2's target: one stats tick applied for 1,000 VMs in < 50 ms.

    .venv/bin/python bench/bench_libvirt_stats.py [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.libvirtd import write_test_driver_xml  # noqa: E402
from vmgui.backends.libvirt import LibvirtBackend  # noqa: E402
from vmgui.model import rates_between  # noqa: E402

TARGET_TICK_MS = 50.0


def _ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1e3:7.2f} ms   "
        f"min {min(values) * 1e3:7.2f} ms   max {max(values) * 1e3:7.2f} ms"
    )


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = write_test_driver_xml(Path(tmp) / "node1000.xml", 1000)
        backend = LibvirtBackend(f"test://{node}")
        t0 = time.perf_counter()
        await backend.connect()
        connect_s = time.perf_counter() - t0
        try:
            lists, ticks, rates = [], [], []
            previous = await backend.sample_stats()
            for _ in range(rounds):
                t = time.perf_counter()
                vms = await backend.list_vms()
                lists.append(time.perf_counter() - t)
                assert len(vms) == 1000
                t = time.perf_counter()
                samples = await backend.sample_stats()
                ticks.append(time.perf_counter() - t)
                assert len(samples) == 750
                t = time.perf_counter()
                by_id = {s.vm_id: s for s in previous}
                derived = [rates_between(by_id[s.vm_id], s) for s in samples if s.vm_id in by_id]
                rates.append(time.perf_counter() - t)
                assert len(derived) == 750
                previous = samples
        finally:
            await backend.close()
    print(f"connect (open + first listing, 1,000 VMs): {connect_s * 1e3:.1f} ms")
    print(f"list_vms, 1,000 VMs ({rounds} rounds):      {_ms(lists)}")
    print(f"stats tick, 750 running ({rounds} rounds):  {_ms(ticks)}")
    print(f"rates for 750 VMs:                          {_ms(rates)}")
    tick = statistics.median(ticks) + statistics.median(rates)
    print(
        f"tick + rates vs target {TARGET_TICK_MS:.0f} ms: {tick * 1e3:.2f} ms "
        f"(ratio {tick * 1e3 / TARGET_TICK_MS:.2f})"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
