"""The "Exits/s" graph of built-in VMs: how often the guest leaves KVM, and why.

A VM exit is the moment the CPU hands control from the guest back to the VMM (port I/O, MMIO, a
halt, an interrupt window...). Their rate by reason says where a VM's time goes: a busy serial
port shows as IO, an idle guest as HLT. The graph plots the total and the busiest reasons.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmgui.model import VmRates
from vmgui.ui.graphs import SERIES_COLORS, GraphWidget, Series

#: The total plus this many reasons (one colour each).
TOP_REASONS = len(SERIES_COLORS) - 1


def format_count(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f} M"
    if v >= 1e4:
        return f"{v / 1e3:.0f} k"
    return f"{v:.0f}"


def exit_series(history: Sequence[VmRates]) -> list[Series]:
    """[] when the backend reports no exits (libvirt VMs), else total + busiest reasons."""
    if not any(r.exits_per_s for r in history):
        return []
    totals: dict[str, float] = {}
    for r in history:
        for reason, v in r.exits_per_s.items():
            totals[reason] = totals.get(reason, 0.0) + v
    top = sorted(totals, key=lambda k: (-totals[k], k))[:TOP_REASONS]
    series = [Series("all", [sum(r.exits_per_s.values()) for r in history])]
    series += [Series(reason, [r.exits_per_s.get(reason, 0.0) for r in history]) for reason in top]
    return series


class ExitsGraph(GraphWidget):
    """Shown only for VMs whose backend reports exits."""

    def __init__(self) -> None:
        super().__init__("Exits/s", format_count)
        self.setObjectName("exitsGraph")
        self.hide()

    def show_history(self, history: Sequence[VmRates]) -> None:
        series = exit_series(history)
        self.set_series(series)
        self.setVisible(bool(series))
