"""Turn a VMM's `x-vmgui-stats` reply and its process counters into a VmStatsSample.

CPU time is the VMM process's (user + system): vCPU threads run the guest, so this is what the
VM costs the host. Disk and network byte counters are read when the VMM reports them (keys
"disk" and "net" with "read_bytes"/"write_bytes", "rx_bytes"/"tx_bytes"); until it does, disk
bytes are the VMM process's storage I/O from /proc/PID/io (its images, plus a little log). VM
exits are summed over vCPUs by reason.
"""

from __future__ import annotations

import os
import time
from typing import Any

from vmgui.model import VmStatsSample

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu_ns(pid: int) -> int:
    """utime + stime of `pid` in nanoseconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return 0
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        ticks = int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return 0
    return ticks * 1_000_000_000 // _TICKS_PER_S


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _section(stats: dict[str, Any], key: str) -> dict[str, Any]:
    value = stats.get(key)
    return value if isinstance(value, dict) else {}


def exits_by_reason(stats: dict[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    vcpus = stats.get("vcpus")
    for vcpu in vcpus if isinstance(vcpus, list) else []:
        exits = vcpu.get("exits") if isinstance(vcpu, dict) else None
        for reason, n in (exits.items() if isinstance(exits, dict) else ()):
            total[str(reason)] = total.get(str(reason), 0) + _count(n)
    return total


def process_storage_io(pid: int) -> tuple[int, int]:
    """(read_bytes, write_bytes) the process caused at the storage layer; zeros when unknown."""
    values = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                values[key] = value.strip()
        return int(values.get("read_bytes", 0)), int(values.get("write_bytes", 0))
    except (OSError, ValueError):
        return 0, 0


def sample_from(vm_id: str, pid: int, vcpus: int, memory_mib: int,
                stats: dict[str, Any]) -> VmStatsSample:
    disk = _section(stats, "disk")
    net = _section(stats, "net")
    if not disk:
        read, written = process_storage_io(pid)
        disk = {"read_bytes": read, "write_bytes": written}
    return VmStatsSample(
        vm_id=vm_id,
        timestamp=time.monotonic(),
        cpu_time_ns=process_cpu_ns(pid),
        vcpus=max(1, vcpus),
        memory_used_kib=_count(stats.get("rss")) // 1024,
        memory_total_kib=memory_mib * 1024,
        disk_read_bytes=_count(disk.get("read_bytes")),
        disk_write_bytes=_count(disk.get("write_bytes")),
        net_rx_bytes=_count(net.get("rx_bytes")),
        net_tx_bytes=_count(net.get("tx_bytes")),
        exits=exits_by_reason(stats),
    )
