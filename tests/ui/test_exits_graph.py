"""The Exits/s graph: total plus busiest reasons, hidden for VMs without exit counts."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from vmgui.model import VmRates
from vmgui.ui.exits_graph import ExitsGraph, exit_series


def test_series_are_total_and_busiest_reasons() -> None:
    h = [VmRates("a", 0.0, exits_per_s={"IO": 100.0, "HLT": 5.0, "MMIO": 1.0, "IRQ_WINDOW": 2.0,
                                         "SHUTDOWN": 0.5}),
         VmRates("a", 1.0, exits_per_s={"IO": 50.0, "HLT": 10.0})]
    series = exit_series(h)
    assert [s.label for s in series] == ["all", "IO", "HLT", "IRQ_WINDOW"]
    assert list(series[0].values) == [108.5, 60.0]
    assert list(series[2].values) == [5.0, 10.0]
    assert exit_series([VmRates("b", 0.0)]) == []


def test_graph_hides_without_exits(qtbot: QtBot) -> None:
    g = ExitsGraph()
    qtbot.addWidget(g)
    g.show_history([VmRates("a", 0.0, exits_per_s={"IO": 3.0})])
    assert g.isVisibleTo(g.parentWidget()) if g.parentWidget() else not g.isHidden()
    g.show_history([VmRates("a", 0.0)])
    assert g.isHidden()
