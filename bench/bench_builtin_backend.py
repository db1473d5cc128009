"""The built-in backend's own costs, with real vmgui-vmm processes on /dev/kvm.

Prints, as medians over a few VMs: start() until the VM is controllable (process spawn, VMM
start-up, QMP handshake), a sample_stats() round trip with all of them running, re-attaching to
the running VMs from a fresh backend (what a GUI restart pays), and force_off() until shut off.
Runs in private XDG directories; asserts only that every VM really ran.

    PYTHONPATH=. python bench/bench_builtin_backend.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

VMS = 4


async def main() -> None:
    from tests.guests.build import build_guest
    from vmgui.backends.builtin import BuiltinBackend
    from vmgui.model import VmConfig, VmState

    kernel = build_guest("power_button")
    backend = BuiltinBackend()
    await backend.connect()
    ids = [
        (await backend.define(VmConfig(name=f"bench-{i}", memory_mib=32, kernel=str(kernel),
                                       network="none"))).vm_id
        for i in range(VMS)
    ]
    starts = []
    for vm_id in ids:
        t = time.perf_counter()
        await backend.start(vm_id)
        starts.append(time.perf_counter() - t)
    await asyncio.sleep(0.5)
    samples = []
    for _ in range(10):
        t = time.perf_counter()
        got = await backend.sample_stats()
        samples.append(time.perf_counter() - t)
        assert len(got) == VMS and all(sum(s.exits.values()) > 0 for s in got)
    await backend.close()

    t = time.perf_counter()
    again = BuiltinBackend()
    await again.connect()
    reattach = time.perf_counter() - t
    assert all(v.state is VmState.RUNNING for v in await again.list_vms())
    offs = []
    for vm_id in ids:
        t = time.perf_counter()
        await again.force_off(vm_id)
        offs.append(time.perf_counter() - t)
    assert all(v.state is VmState.SHUTOFF for v in await again.list_vms())
    await again.close()

    ms = lambda xs: f"{statistics.median(xs) * 1000:.0f} ms"  # noqa: E731
    print(f"start() until controllable, median of {VMS}: {ms(starts)}")
    print(f"sample_stats() with {VMS} VMs running, median of 10: {ms(samples)}")
    print(f"re-attach to {VMS} running VMs (fresh backend connect): {reattach * 1000:.0f} ms")
    print(f"force_off() until shut off, median of {VMS}: {ms(offs)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="vb-") as tmp:
        for var in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
            os.environ[var] = str(Path(tmp) / var.lower())
            Path(os.environ[var]).mkdir()
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        asyncio.run(main())
