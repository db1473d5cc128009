"""libvirt's test:/// driver with 1,000 domains: listing, events and stats stay cheap."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import pytest

from tests.backends.libvirt.helpers import EventRecorder, vm_state_is
from vmgui.backends.libvirt import LibvirtBackend
from vmgui.model import ConnectionState, VmState


def test_thousand_domains_are_listed_with_their_states(
    qt_loop: asyncio.AbstractEventLoop, test_driver_1000: Path
) -> None:
    async def scenario() -> None:
        backend = LibvirtBackend(f"test://{test_driver_1000}")
        await backend.connect()
        try:
            assert backend.status.state is ConnectionState.CONNECTED
            t0 = time.monotonic()
            vms = await backend.list_vms()
            elapsed = time.monotonic() - t0
            assert len(vms) == 1000 and len({v.vm_id for v in vms}) == 1000
            counts = collections.Counter(v.state for v in vms)
            assert counts[VmState.RUNNING] == 375 and counts[VmState.PAUSED] == 125
            assert counts[VmState.SHUTOFF] == 250
            assert counts[VmState.CRASHED] == 125 and counts[VmState.PMSUSPENDED] == 125
            vm7 = next(v for v in vms if v.name == "vm0007")
            assert (vm7.memory_kib, vm7.vcpus) == ((256 + 7 * 128) * 1024, 4)
            assert elapsed < 5, f"listing 1,000 VMs took {elapsed:.2f} s"

            samples = await backend.sample_stats()
            assert len(samples) == 750  # every active domain, in one call

            rec = await EventRecorder(backend).start()
            target = next(v for v in vms if v.state is VmState.SHUTOFF)
            await backend.start(target.vm_id)
            await rec.wait_for(vm_state_is(target.vm_id, VmState.RUNNING), 5)
            await rec.stop()
        finally:
            await backend.close()

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))


@pytest.mark.parametrize("path", ["/nonexistent/node.xml"])
def test_test_driver_with_missing_file_is_a_clear_error(
    qt_loop: asyncio.AbstractEventLoop, path: str
) -> None:
    from vmgui.backends.base import BackendError

    backend = LibvirtBackend(f"test://{path}")
    with pytest.raises(BackendError, match=r"^Cannot connect to test:///nonexistent/node\.xml: "):
        qt_loop.run_until_complete(backend.connect())
    qt_loop.run_until_complete(backend.close())
