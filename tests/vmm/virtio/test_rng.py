"""virtio-rng fills guest buffers with fresh random bytes, capped per request."""

from __future__ import annotations

from tests.vmm.virtio.driver import DATA_BASE, Buf, Driver
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.rng import RNG_MAX_BYTES_PER_REQUEST, VirtioRng


def test_rng_fills_buffers_with_distinct_random_bytes(mem: GuestMemory) -> None:
    rng = VirtioRng()
    d = Driver(VirtioMmioTransport(rng, mem, lambda: None), mem)
    d.setup()
    d.queues[0].submit([Buf(DATA_BASE, 32, True), Buf(DATA_BASE + 0x1000, 32, True)])
    d.queues[0].submit([Buf(DATA_BASE + 0x2000, 64, True)])
    d.kick(0)
    assert d.queues[0].used_entries() == [(0, 64), (2, 64)]
    a = mem.read(DATA_BASE, 32) + mem.read(DATA_BASE + 0x1000, 32)
    b = mem.read(DATA_BASE + 0x2000, 64)
    assert a != b and len(set(a)) > 20 and a != bytes(64)
    assert rng.bytes_served == 128


def test_rng_caps_each_request(mem: GuestMemory) -> None:
    d = Driver(VirtioMmioTransport(VirtioRng(), mem, lambda: None), mem)
    d.setup()
    d.queues[0].submit([Buf(DATA_BASE, RNG_MAX_BYTES_PER_REQUEST * 2, True)])
    d.kick(0)
    assert d.queues[0].used_entries() == [(0, RNG_MAX_BYTES_PER_REQUEST)]
    assert mem.read(DATA_BASE + RNG_MAX_BYTES_PER_REQUEST, 16) == bytes(16)
