"""The VM table model and its proxy: minimal signals, correct data, sorting and filtering.

These drive the real Qt model with VmInfo values (the data the backends produce), checked by
Qt's own QAbstractItemModelTester.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from vmgui.model import VmInfo, VmRates, VmState
from vmgui.ui.vm_model import HISTORY_ROLE, KEY_ROLE, Column, VmTableModel
from vmgui.ui.vm_proxy import VmFilterProxy

C1 = "test:///one"
C2 = "test:///two"


def vm(i: int, state: VmState = VmState.RUNNING, conn: str = C1, **kw: Any) -> VmInfo:
    return VmInfo(connection=conn, vm_id=f"id-{i}", name=kw.pop("name", f"vm{i:04d}"),
                  state=state, memory_kib=kw.pop("memory_kib", 1024 * (i % 8 + 1)), **kw)


@pytest.fixture
def model(qapp: object) -> VmTableModel:
    m = VmTableModel()
    QAbstractItemModelTester(m, QAbstractItemModelTester.FailureReportingMode.Fatal)
    return m


class Recorder:
    def __init__(self, m: VmTableModel) -> None:
        self.changed: list[tuple[int, int, int, int]] = []
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        m.dataChanged.connect(
            lambda a, b, *_: self.changed.append((a.row(), a.column(), b.row(), b.column())))
        m.rowsInserted.connect(lambda _p, a, b: self.inserted.append((a, b)))
        m.rowsRemoved.connect(lambda _p, a, b: self.removed.append((a, b)))


def test_batch_insert_is_one_signal_and_updates_only_changed_cells(model: VmTableModel) -> None:
    rec = Recorder(model)
    model.upsert([vm(i) for i in range(1000)])
    assert rec.inserted == [(0, 999)]
    assert model.rowCount() == 1000
    model.upsert([vm(5, VmState.PAUSED)])
    assert rec.changed == [(5, Column.STATE, 5, Column.STATE)]
    assert model.index(5, Column.STATE).data() == "paused"
    rec.changed.clear()
    model.upsert([vm(5, VmState.PAUSED)])  # identical: no signal at all
    assert rec.changed == []
    model.upsert([vm(6, VmState.SHUTOFF)])  # state + CPU/memory presentation flip
    assert rec.changed == [(6, Column.STATE, 6, Column.MEMORY)]


def test_remove_keeps_index_consistent(model: VmTableModel) -> None:
    model.upsert([vm(i) for i in range(10)])
    rec = Recorder(model)
    model.remove([(C1, "id-2"), (C1, "id-3"), (C1, "id-4"), (C1, "id-8"), (C1, "nope")])
    assert rec.removed == [(8, 8), (2, 4)]
    assert [model.index(r, 0).data() for r in range(model.rowCount())] == [
        "vm0000", "vm0001", "vm0005", "vm0006", "vm0007", "vm0009"]
    assert model.row_of((C1, "id-9")) == 5
    assert model.index(5, 0).data(KEY_ROLE) == (C1, "id-9")


def test_replace_connection_reconciles_only_that_connection(model: VmTableModel) -> None:
    model.upsert([vm(1), vm(2), vm(3, conn=C2)])
    model.replace_connection(C1, [vm(2, VmState.PAUSED), vm(4)])
    assert sorted(model.keys()) == [(C1, "id-2"), (C1, "id-4"), (C2, "id-3")]
    assert model.vm((C1, "id-2")).state == VmState.PAUSED  # type: ignore[union-attr]


def test_stats_tick_for_1000_vms_is_one_range_signal_and_fast(model: VmTableModel) -> None:
    model.upsert([vm(i) for i in range(1000)])
    rec = Recorder(model)
    ticks: list[tuple[int, int]] = []
    model.stats_changed.connect(lambda a, b: ticks.append((a, b)))
    now = time.time()
    rates = [VmRates(f"id-{i}", now, cpu_percent=i % 100, memory_used_kib=512,
                     memory_total_kib=1024, memory_used_in_guest=True) for i in range(1000)]
    t0 = time.perf_counter()
    keys = model.apply_rates(C1, rates)
    elapsed = time.perf_counter() - t0
    assert len(keys) == 1000
    assert ticks == [(0, 999)] and rec.changed == []  # one signal, no proxy re-filtering
    assert model.index(42, Column.CPU).data() == "42 %"
    assert model.index(42, Column.MEMORY).data() == "512.0 KiB / 1.0 MiB"
    assert model.index(42, Column.CPU).data(HISTORY_ROLE) == [42.0]
    assert elapsed < 0.5  # generous bound; bench/bench_gui.py reports the real figure


def test_history_is_dropped_when_a_vm_stops(model: VmTableModel) -> None:
    model.upsert([vm(1)])
    model.apply_rates(C1, [VmRates("id-1", 1.0, cpu_percent=50)])
    model.upsert([vm(1, VmState.SHUTOFF)])
    assert model.history((C1, "id-1")) == []
    assert model.index(0, Column.CPU).data() == ""


def test_proxy_filters_by_connection_and_text_and_sorts(model: VmTableModel) -> None:
    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    QAbstractItemModelTester(proxy, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.upsert([vm(i, conn=C1 if i % 2 else C2,
                     state=VmState.PAUSED if i % 3 == 0 else VmState.RUNNING) for i in range(30)])
    proxy.sort(Column.MEMORY, Qt.SortOrder.DescendingOrder)
    mems = [proxy.index(r, 0).data(KEY_ROLE) for r in range(proxy.rowCount())]
    kib = [model.vm(k).memory_kib for k in mems]  # type: ignore[union-attr]
    assert kib == sorted(kib, reverse=True)
    proxy.set_connection(C2)
    assert proxy.rowCount() == 15
    proxy.set_text("paused")
    assert proxy.rowCount() == 5  # even i divisible by 3: 0, 6, 12, 18, 24
    proxy.set_text("VM0012")
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == ["vm0012"]
    proxy.set_connection(None)
    proxy.set_text("")
    assert proxy.rowCount() == 30


def test_proxy_relays_stats_ticks_and_resorts_only_by_cpu(model: VmTableModel) -> None:
    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    QAbstractItemModelTester(proxy, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.upsert([vm(i) for i in range(5)])
    changed: list[tuple[int, int, int, int]] = []
    proxy.dataChanged.connect(
        lambda a, b, *_: changed.append((a.row(), a.column(), b.row(), b.column())))
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    model.apply_rates(C1, [VmRates(f"id-{i}", 1.0, cpu_percent=10 * (5 - i)) for i in range(5)])
    assert changed == [(0, Column.CPU, 4, Column.MEMORY)]
    assert proxy.index(0, 0).data() == "vm0000"
    proxy.sort(Column.CPU, Qt.SortOrder.AscendingOrder)
    assert [proxy.index(r, 0).data() for r in range(5)] == [f"vm{i:04d}" for i in (4, 3, 2, 1, 0)]
    model.apply_rates(C1, [VmRates(f"id-{i}", 2.0, cpu_percent=10 * i) for i in range(5)])
    assert [proxy.index(r, 0).data() for r in range(5)] == [f"vm{i:04d}" for i in range(5)]


def test_listeners_of_rows_removed_see_the_model_already_changed(
    model: VmTableModel, qt_loop: object
) -> None:
    """Emit after the model changed: a details view and a summary read it in rowsRemoved."""
    from vmgui.ui.connections import ConnectionManager
    from vmgui.ui.details import DetailsView

    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    QAbstractItemModelTester(proxy, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.upsert([vm(i) for i in range(6)])
    manager = ConnectionManager(model, lambda uri: None)  # type: ignore[arg-type, return-value]
    details = DetailsView(model, manager)
    details.show_vm((C1, "id-5"))
    seen: list[tuple[int, list[bool]]] = []

    def summary(*_: object) -> None:
        # what a status bar summary or a details view does: look rows up by key
        keys = [proxy.index(r, 0).data(KEY_ROLE) for r in range(proxy.rowCount())]
        seen.append((proxy.rowCount(), [model.row_of(k) >= 0 and model.vm(k) is not None
                                        and model.vm(k).vm_id == k[1]  # type: ignore[union-attr]
                                        for k in keys]))

    model.rowsRemoved.connect(summary)
    proxy.rowsRemoved.connect(summary)
    model.remove([(C1, "id-1"), (C1, "id-3")])
    assert seen and all(all(ok) for _n, ok in seen)
    assert seen[-1][0] == 4
    assert details.overview_labels["Name"].text() == "vm0005"  # still the same VM, not another
    model.remove([(C1, "id-5")])
    assert details.key is None and details.overview_labels["Name"].text() == ""


def test_memory_cell_says_whose_figure_it_shows(model: VmTableModel) -> None:
    """Host RSS of the VM's process is not the guest's memory use: label it as the host's."""
    model.upsert([vm(1), vm(2)])
    gib, used = 1024 * 1024, 300 * 1024
    model.apply_rates(C1, [
        VmRates("id-1", 1.0, memory_used_kib=used, memory_total_kib=gib, memory_used_in_guest=True),
        VmRates("id-2", 1.0, memory_used_kib=used, memory_total_kib=gib),
    ])
    assert model.index(0, Column.MEMORY).data() == "300.0 MiB / 1.0 GiB"
    assert model.index(1, Column.MEMORY).data() == "1.0 GiB (host: 300.0 MiB)"
    tip = model.index(1, Column.MEMORY).data(Qt.ItemDataRole.ToolTipRole)
    assert "host" in tip and "guest" in tip
    assert model.history((C1, "id-1"))[-1].memory_used_in_guest
    assert not model.history((C1, "id-2"))[-1].memory_used_in_guest


def test_filter_matches_states_as_substrings(model: VmTableModel) -> None:
    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    model.upsert([vm(1, VmState.SHUTOFF), vm(2, VmState.PAUSED), vm(3, VmState.RUNNING)])
    names = lambda: sorted(proxy.index(r, 0).data() for r in range(proxy.rowCount()))  # noqa: E731
    proxy.set_text("shut")
    assert names() == ["vm0001"]
    proxy.set_text("PAUS")
    assert names() == ["vm0002"]
    proxy.set_text("run")
    assert names() == ["vm0003"]


def test_connection_column_names_each_rows_connection(model: VmTableModel) -> None:
    from vmgui.backends.base import BUILTIN_URI

    model.upsert([vm(1), vm(2, conn=C2), vm(3, conn=BUILTIN_URI)])
    assert model.headerData(Column.CONNECTION, Qt.Orientation.Horizontal) == "Connection"
    cells = [model.index(r, Column.CONNECTION).data() for r in range(3)]
    assert cells == [C1, C2, "This computer"]
    assert model.index(2, Column.CONNECTION).data(Qt.ItemDataRole.ToolTipRole) == BUILTIN_URI


def test_rows_of_a_lost_connection_are_stale_until_it_is_back(model: VmTableModel) -> None:
    model.upsert([vm(1), vm(2, conn=C2)])
    model.apply_rates(C1, [VmRates("id-1", 1.0, cpu_percent=40)])
    rec = Recorder(model)
    model.set_stale(C1, True)
    assert model.is_stale((C1, "id-1")) and not model.is_stale((C2, "id-2"))
    assert rec.changed == [(0, 0, 0, Column.CONNECTION)]  # the whole row repaints
    state = model.index(0, Column.STATE).data()
    assert state == "unknown (disconnected)"
    assert model.index(0, Column.CPU).data() == "" and model.index(0, Column.CPU).data(
        HISTORY_ROLE) == []
    assert model.index(0, Column.NAME).data(Qt.ItemDataRole.ForegroundRole) is not None
    model.set_stale(C1, False)
    assert not model.is_stale((C1, "id-1")) and model.index(0, Column.STATE).data() == "running"
