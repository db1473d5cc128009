"""A VM's recent rates, stored as packed doubles.

A full minute of history for 1,000 VMs as VmRates objects costs ~20 MB of Python objects; the
same figures as arrays of doubles cost ~4 MB. The list needs only the CPU series (sparkline) and
the latest sample; VmRates objects are rebuilt on demand for the one VM the details view shows.
"""

from __future__ import annotations

from array import array

from vmgui.model import VmRates

_FIELDS = (
    "timestamp",
    "cpu_percent",
    "memory_used_kib",
    "memory_total_kib",
    "disk_read_bps",
    "disk_write_bps",
    "net_rx_bps",
    "net_tx_bps",
    "memory_used_in_guest",
    "disk_count",
    "nic_count",
)
_WIDTH = len(_FIELDS)
_INT_FIELDS = {"memory_used_kib", "memory_total_kib", "disk_count", "nic_count"}
_BOOL_FIELDS = {"memory_used_in_guest"}


class RatesHistory:
    """The last `capacity` VmRates of one VM (oldest first)."""

    __slots__ = ("_capacity", "_data", "_exits", "latest")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._data = array("d")
        #: VM exits/s by reason, one value per sample (only for VMs whose backend reports them).
        self._exits: dict[str, array[float]] = {}
        self.latest: VmRates | None = None

    def __len__(self) -> int:
        return len(self._data) // _WIDTH

    def __bool__(self) -> bool:
        return self.latest is not None

    def append(self, r: VmRates) -> None:
        before = len(self)
        self._data.extend(float(getattr(r, f)) for f in _FIELDS)
        for reason in r.exits_per_s.keys() - self._exits.keys():
            self._exits[reason] = array("d", bytes(8 * before))  # zeros for earlier samples
        for reason, values in self._exits.items():
            values.append(float(r.exits_per_s.get(reason, 0.0)))
        if len(self._data) > self._capacity * _WIDTH:
            del self._data[:_WIDTH]
            for values in self._exits.values():
                del values[:1]
        self.latest = r

    def clear(self) -> None:
        self._data = array("d")
        self._exits = {}
        self.latest = None

    def cpu(self) -> list[float]:
        return self._data[1::_WIDTH].tolist()

    def as_rates(self, vm_id: str) -> list[VmRates]:
        out = []
        d = self._data
        for n, i in enumerate(range(0, len(d), _WIDTH)):
            values = {f: _typed(f, d[i + k]) for k, f in enumerate(_FIELDS)}
            exits = {reason: v[n] for reason, v in self._exits.items() if v[n]}
            out.append(VmRates(vm_id=vm_id, exits_per_s=exits, **values))  # type: ignore[arg-type]
        return out


def _typed(field: str, value: float) -> float | int | bool:
    if field in _INT_FIELDS:
        return int(value)
    return bool(value) if field in _BOOL_FIELDS else value
