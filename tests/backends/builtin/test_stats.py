"""x-vmgui-stats replies and /proc counters become one VmStatsSample."""

from __future__ import annotations

import os
from pathlib import Path

from vmgui.backends.builtin.stats import exits_by_reason, process_storage_io, sample_from


def test_exits_are_summed_over_vcpus_and_bad_values_ignored() -> None:
    stats = {"vcpus": [{"index": 0, "exits": {"IO": 5, "HLT": 2}},
                       {"index": 1, "exits": {"IO": 1, "MMIO": -3, "X": "lots"}}, "junk"],
             "rss": 4096 * 1024}
    assert exits_by_reason(stats) == {"IO": 6, "HLT": 2, "MMIO": 0, "X": 0}
    sample = sample_from("vm", os.getpid(), 2, 64, stats)
    assert sample.memory_used_kib == 4096 and sample.memory_total_kib == 64 * 1024
    assert sample.cpu_time_ns > 0 and sample.vcpus == 2


def test_disk_bytes_from_the_vmm_when_reported_else_from_proc(tmp_path: Path) -> None:
    reported = sample_from("vm", os.getpid(), 1, 1, {"disk": {"read_bytes": 7, "write_bytes": 9}})
    assert (reported.disk_read_bytes, reported.disk_write_bytes) == (7, 9)
    before = process_storage_io(os.getpid())[1]
    with open(tmp_path / "f", "wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    assert sample_from("vm", os.getpid(), 1, 1, {}).disk_write_bytes >= before + (1 << 20)
    assert process_storage_io(999_999_999) == (0, 0)
