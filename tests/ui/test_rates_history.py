"""Packed rate history: what goes in comes back (as VmRates), capped at its capacity."""

from __future__ import annotations

from vmgui.model import VmRates
from vmgui.ui.rates_history import RatesHistory


def test_round_trip_and_capacity() -> None:
    h = RatesHistory(capacity=3)
    assert not h and len(h) == 0 and h.as_rates("a") == []
    samples = [VmRates("a", float(t), cpu_percent=10.0 * t, memory_used_kib=100 + t,
                       memory_total_kib=1024, disk_read_bps=1.5 * t, disk_write_bps=2.0,
                       net_rx_bps=3.0, net_tx_bps=4.0 * t) for t in range(5)]
    for r in samples:
        h.append(r)
    assert len(h) == 3 and h.latest == samples[-1]
    assert h.as_rates("a") == samples[2:]  # oldest dropped, ints stay ints
    assert h.cpu() == [20.0, 30.0, 40.0]
    h.clear()
    assert not h and h.cpu() == []


def test_exits_by_reason_follow_the_samples() -> None:
    h = RatesHistory(capacity=2)
    h.append(VmRates("a", 0.0))
    h.append(VmRates("a", 1.0, exits_per_s={"IO": 5.0}))
    h.append(VmRates("a", 2.0, exits_per_s={"HLT": 2.0}))
    assert [r.exits_per_s for r in h.as_rates("a")] == [{"IO": 5.0}, {"HLT": 2.0}]
    h.clear()
    h.append(VmRates("a", 3.0))
    assert h.as_rates("a")[0].exits_per_s == {}
