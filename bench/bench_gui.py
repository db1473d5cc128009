"""GUI figures on the 1,000-domain test:/// connection (printed; asserts only correctness).

    .venv/bin/python bench/bench_gui.py [--seconds 60]

1. cold start: process spawn -> window shown with all 1,000 rows (target < 1.5 s)
2. one stats tick for 1,000 VMs: rates + model + repaint of the visible rows (target < 50 ms),
   and the backend's sample_stats round trip on its own
3. worst event-loop stall while monitoring at a 1 s interval (target < 50 ms)
4. GUI CPU % of one core and RSS while monitoring at the default interval (targets <= 5 %,
   <= 120 MB)

The test driver's domains are not real guests (their counters do not move), so ticks carry
synthetic counter increments; everything else is the real app: backend, model, proxy, view.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.fixtures.libvirtd import write_test_driver_xml  # noqa: E402

COUNT = 1000


def cold_start_child(uri: str, spawned_at: float) -> None:
    """Runs in a fresh process: import, build, show, wait for the rows, paint once."""
    import qasync
    from PySide6.QtWidgets import QApplication

    from vmgui.app import make_backend
    from vmgui.settings import Settings
    from vmgui.ui.main_window import MainWindow

    app = QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def run() -> float:
        w = MainWindow(Settings(), make_backend, persist=lambda s: None, extra_uris=[uri])
        w.show()
        await w.manager.wait_populated()
        assert w.model.rowCount() == COUNT, w.model.rowCount()
        w.table.viewport().repaint()
        elapsed = time.time() - spawned_at
        await w.shutdown()
        return elapsed

    print(f"{loop.run_until_complete(run()):.3f}")


def bench_cold_start(uri: str, runs: int = 3) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--child-cold-start", uri, repr(time.time())],
            capture_output=True, text=True, check=True, timeout=120,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


async def bench_in_process(uri: str, seconds: float) -> dict[str, float]:
    import psutil
    from PySide6.QtWidgets import QApplication

    from vmgui.app import make_backend
    from vmgui.settings import DEFAULT_STATS_INTERVAL_S, Settings
    from vmgui.ui.main_window import MainWindow

    app = QApplication.instance()
    assert app is not None
    w = MainWindow(Settings(), make_backend, persist=lambda s: None, extra_uris=[uri])
    w.resize(1100, 720)
    w.show()
    await w.manager.wait_populated()
    assert w.model.rowCount() == COUNT
    backend = w.manager.backend(uri)
    assert backend is not None
    figures: dict[str, float] = {}

    # 2. one stats tick
    t0 = time.perf_counter()
    samples = await backend.sample_stats()
    figures["sample_stats_ms"] = (time.perf_counter() - t0) * 1000
    figures["sampled_vms"] = len(samples)
    w.manager.apply_samples(uri, samples)  # the baseline tick
    ticks = []
    for k in range(1, 6):
        later = [replace(s, timestamp=s.timestamp + k, cpu_time_ns=s.cpu_time_ns + k * 10**8 * (
            i % 10)) for i, s in enumerate(samples)]
        app.processEvents()
        t0 = time.perf_counter()
        keys = w.manager.apply_samples(uri, later)
        w.table.viewport().repaint()
        ticks.append((time.perf_counter() - t0) * 1000)
        assert len(keys) == len(samples)
    figures["tick_ms_median"] = sorted(ticks)[len(ticks) // 2]
    figures["tick_ms_worst"] = max(ticks)

    # 3. worst stall while monitoring at 1 s, with the details view showing a running VM
    w.manager.stats_interval_s = 1
    w.table.selectRow(0)
    worst, last = 0.0, time.monotonic()
    end = last + seconds / 2
    while time.monotonic() < end:
        await asyncio.sleep(0.005)
        now = time.monotonic()
        worst, last = max(worst, now - last - 0.005), now
    figures["worst_stall_ms"] = worst * 1000

    # 4. steady monitoring at the default interval: CPU and RSS of this process
    w.manager.stats_interval_s = DEFAULT_STATS_INTERVAL_S
    proc = psutil.Process()
    await asyncio.sleep(DEFAULT_STATS_INTERVAL_S)
    c0, t0 = proc.cpu_times(), time.monotonic()
    await asyncio.sleep(seconds / 2)
    c1, t1 = proc.cpu_times(), time.monotonic()
    figures["cpu_percent"] = ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0) * 100
    figures["rss_mb"] = proc.memory_info().rss / 2**20
    await w.shutdown()
    w.close()
    return figures


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child-cold-start":
        cold_start_child(sys.argv[2], float(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="monitoring time in total")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CONFIG_HOME"] = tmp
        uri = f"test://{write_test_driver_xml(Path(tmp) / 'node.xml', COUNT)}"
        cold = bench_cold_start(uri)
        print(f"cold start to populated window ({COUNT} VMs): "
              f"best {min(cold):.3f} s, runs {', '.join(f'{t:.3f}' for t in cold)} "
              f"(target < 1.5 s, ratio {min(cold) / 1.5:.2f})")
        import qasync
        from PySide6.QtWidgets import QApplication

        app = QApplication([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        f = loop.run_until_complete(bench_in_process(uri, args.seconds))
        print(f"backend sample_stats round trip: {f['sample_stats_ms']:.1f} ms "
              f"({f['sampled_vms']:.0f} running VMs sampled)")
        print(f"one stats tick applied ({f['sampled_vms']:.0f} VMs, rates + model + repaint): "
              f"median {f['tick_ms_median']:.1f} ms, worst {f['tick_ms_worst']:.1f} ms "
              f"(target < 50 ms, ratio {f['tick_ms_worst'] / 50:.2f})")
        print(f"worst event-loop stall over {args.seconds / 2:.0f} s of 1 s monitoring: "
              f"{f['worst_stall_ms']:.1f} ms (target < 50 ms, ratio {f['worst_stall_ms'] / 50:.2f})")
        print(f"steady monitoring at the default interval: CPU {f['cpu_percent']:.1f} % of one "
              f"core (target <= 5 %), RSS {f['rss_mb']:.0f} MB (target <= 120 MB)")


if __name__ == "__main__":
    main()
