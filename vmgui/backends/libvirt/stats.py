"""getAllDomainStats records -> VmStatsSample / state (pure conversion, no connection).

One `getAllDomainStats` call per tick returns every running VM's counters as flat dicts
("cpu.time", "block.0.rd.bytes", ...); summing the per-device counters here keeps the UI free
of libvirt's key names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import libvirt

from vmgui.model import VmState, VmStatsSample

STATS_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)
LIST_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: VmState.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: VmState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VmState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VmState.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: VmState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: VmState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VmState.PMSUSPENDED,
}

_PAUSED_REASONS = {
    libvirt.VIR_DOMAIN_PAUSED_USER: "paused by user",
    libvirt.VIR_DOMAIN_PAUSED_IOERROR: "paused after an I/O error",
    libvirt.VIR_DOMAIN_PAUSED_SHUTTING_DOWN: "shutting down",
    libvirt.VIR_DOMAIN_PAUSED_CRASHED: "guest crashed",
}
_SHUTOFF_REASONS = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shut down by the guest",
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "forced off",
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "failed to start",
}


def vm_state(code: int) -> VmState:
    return _STATES.get(code, VmState.NOSTATE)


def state_reason(state: int, reason: int) -> str:
    """A few words for the reason codes people care about; empty for the ordinary ones."""
    if state == libvirt.VIR_DOMAIN_PAUSED:
        return _PAUSED_REASONS.get(reason, "")
    if state == libvirt.VIR_DOMAIN_SHUTOFF:
        return _SHUTOFF_REASONS.get(reason, "")
    return ""


def _sum(record: Mapping[str, Any], prefix: str, key: str) -> int:
    count = int(record.get(f"{prefix}.count", 0))
    return sum(int(record.get(f"{prefix}.{i}.{key}", 0)) for i in range(count))


def sample_from_record(vm_id: str, record: Mapping[str, Any], timestamp: float) -> VmStatsSample:
    """One VM's cumulative counters from its getAllDomainStats record."""
    total = int(record.get("balloon.current", 0) or record.get("balloon.maximum", 0))
    # "balloon.rss" is the host's view; "available - unused" the guest's (needs a balloon driver)
    in_guest = "balloon.available" in record and "balloon.unused" in record
    if in_guest:
        used = int(record["balloon.available"]) - int(record["balloon.unused"])
    else:
        used = int(record.get("balloon.rss", total))
    return VmStatsSample(
        vm_id=vm_id,
        timestamp=timestamp,
        cpu_time_ns=int(record.get("cpu.time", 0)),
        vcpus=max(1, int(record.get("vcpu.current", 1))),
        memory_used_kib=max(0, min(used, total) if total else used),
        memory_total_kib=total,
        memory_used_in_guest=in_guest,
        disk_count=int(record.get("block.count", -1)),
        nic_count=int(record.get("net.count", -1)),
        disk_read_bytes=_sum(record, "block", "rd.bytes"),
        disk_write_bytes=_sum(record, "block", "wr.bytes"),
        net_rx_bytes=_sum(record, "net", "rx.bytes"),
        net_tx_bytes=_sum(record, "net", "tx.bytes"),
    )


def samples_from_records(
    records: Iterable[tuple[str, Mapping[str, Any]]], timestamp: float
) -> list[VmStatsSample]:
    """Records as (uuid string, stats dict) pairs -> samples, all stamped with one timestamp."""
    return [sample_from_record(vm_id, rec, timestamp) for vm_id, rec in records]
