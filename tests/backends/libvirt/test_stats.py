"""getAllDomainStats records -> samples: per-device counters summed, memory sensible."""

from __future__ import annotations

from vmgui.backends.libvirt.stats import sample_from_record, state_reason, vm_state
from vmgui.model import VmState


def test_counters_are_summed_over_devices() -> None:
    rec = {
        "state.state": 1,
        "cpu.time": 5_000_000_000,
        "vcpu.current": 2,
        "balloon.current": 524288,
        "balloon.maximum": 524288,
        "balloon.rss": 200000,
        "block.count": 2,
        "block.0.rd.bytes": 100,
        "block.0.wr.bytes": 10,
        "block.1.rd.bytes": 50,
        "block.1.wr.bytes": 5,
        "net.count": 1,
        "net.0.rx.bytes": 7,
        "net.0.tx.bytes": 3,
    }
    s = sample_from_record("u1", rec, 12.5)
    assert (s.vm_id, s.timestamp, s.cpu_time_ns, s.vcpus) == ("u1", 12.5, 5_000_000_000, 2)
    assert (s.memory_used_kib, s.memory_total_kib) == (200000, 524288)
    assert not s.memory_used_in_guest  # the host's RSS of the QEMU process
    assert (s.disk_read_bytes, s.disk_write_bytes) == (150, 15)
    assert (s.net_rx_bytes, s.net_tx_bytes) == (7, 3)


def test_guest_view_of_memory_wins_when_the_balloon_driver_reports_it() -> None:
    rec = {
        "balloon.current": 1000,
        "balloon.available": 900,
        "balloon.unused": 600,
        "balloon.rss": 990,
    }
    s = sample_from_record("u", rec, 0)
    assert s.memory_used_kib == 300 and s.memory_used_in_guest


def test_missing_groups_give_zeros_not_errors() -> None:
    s = sample_from_record("u", {"state.state": 1}, 0)
    assert (s.cpu_time_ns, s.memory_total_kib, s.disk_read_bytes, s.vcpus) == (0, 0, 0, 1)


def test_states_use_virsh_words() -> None:
    assert vm_state(1) is VmState.RUNNING and vm_state(5) is VmState.SHUTOFF
    assert vm_state(99) is VmState.NOSTATE
    assert state_reason(5, 1) == "shut down by the guest"
    assert state_reason(1, 1) == ""
