"""The details view shows Disk and Network graphs only for VMs that have disks or NICs."""

from __future__ import annotations

from typing import Any

from vmgui.model import VmInfo, VmRates, VmState
from vmgui.ui.connections import ConnectionManager
from vmgui.ui.details import DetailsView
from vmgui.ui.vm_model import VmTableModel

C = "test:///x"


def test_io_graphs_only_for_vms_with_those_devices(qtbot: Any, qt_loop: object) -> None:
    model = VmTableModel()
    model.upsert([VmInfo(C, f"id-{i}", f"vm{i}", VmState.RUNNING) for i in range(3)])
    model.apply_rates(C, [
        VmRates("id-0", 1.0, disk_count=0, nic_count=0),
        VmRates("id-1", 1.0, disk_count=2, nic_count=0),
        VmRates("id-2", 1.0),  # a backend that does not count devices: show both
    ])
    manager = ConnectionManager(model, lambda uri: None)  # type: ignore[arg-type, return-value]
    view = DetailsView(model, manager)
    qtbot.addWidget(view)
    view.show()
    shown = {}
    for i in range(3):
        view.show_vm((C, f"id-{i}"))
        shown[i] = (not view.disk_graph.isHidden(), not view.net_graph.isHidden())
    assert shown == {0: (False, False), 1: (True, False), 2: (True, True)}
