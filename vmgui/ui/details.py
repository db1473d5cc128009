"""Details of the selected VM: overview, hardware summary, domain XML, live performance graphs.

Reads VM data from the table model and history only; the XML is fetched through the backend
asynchronously whenever the selection (or the VM's state) changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from vmgui.backends.base import BackendError
from vmgui.model import VmInfo
from vmgui.ui.connections import ConnectionManager
from vmgui.ui.console.console_tab import ConsoleTab
from vmgui.ui.errors import readable
from vmgui.ui.exits_graph import ExitsGraph
from vmgui.ui.formatting import format_kib, format_percent, format_rate
from vmgui.ui.graphs import GraphWidget, Series
from vmgui.ui.tasks import run_for
from vmgui.ui.vm_model import VmKey, VmTableModel


class DetailsView(QTabWidget):
    def __init__(
        self, model: VmTableModel, manager: ConnectionManager, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._manager = manager
        self._key: VmKey | None = None
        self._xml_task: asyncio.Task[None] | None = None
        self._shown_state: Any = None

        overview = QWidget()
        form = QFormLayout(overview)
        self.overview_labels: dict[str, QLabel] = {}
        for field in ("Name", "State", "UUID", "Connection", "vCPUs", "Memory", "Persistent",
                      "Autostart"):
            label = QLabel()
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(field + ":", label)
            self.overview_labels[field] = label
        self.addTab(overview, "Overview")

        self.hardware = QTreeWidget()
        self.hardware.setHeaderLabels(["Device", "Details"])
        self.hardware.setRootIsDecorated(False)
        self.addTab(self.hardware, "Hardware")

        self.xml_view = QPlainTextEdit()
        self.xml_view.setReadOnly(True)
        self.xml_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.xml_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.addTab(self.xml_view, "XML")

        perf = QWidget()
        grid = QGridLayout(perf)
        self.cpu_graph = GraphWidget("CPU", format_percent, fixed_max=100.0)
        self.memory_graph = GraphWidget("Memory", lambda v: format_kib(int(v)))
        self.disk_graph = GraphWidget("Disk I/O", format_rate)
        self.net_graph = GraphWidget("Network I/O", format_rate)
        grid.addWidget(self.cpu_graph, 0, 0)
        grid.addWidget(self.memory_graph, 0, 1)
        grid.addWidget(self.disk_graph, 1, 0)
        grid.addWidget(self.net_graph, 1, 1)
        self.exits_graph = ExitsGraph()  # built-in VMs only
        grid.addWidget(self.exits_graph, 2, 0, 1, 2)
        self.addTab(perf, "Performance")

        self.console = ConsoleTab(manager)
        self.addTab(self.console, "Console")

        model.dataChanged.connect(self._on_data_changed)
        model.rowsRemoved.connect(self._on_rows_removed)
        manager.stats_updated.connect(self._on_stats)
        self.show_vm(None)

    @property
    def key(self) -> VmKey | None:
        return self._key

    def show_vm(self, key: VmKey | None) -> None:
        self._key = key
        vm = self._model.vm(key) if key else None
        self.setEnabled(vm is not None)
        self._fill_overview(vm)
        self._refresh_graphs()
        self._shown_state = vm.state if vm else None
        self.console.show_vm(key, vm)
        self._fetch_xml()

    def open_console(self) -> None:
        """Show the Console tab with the selected VM's console open."""
        self.setCurrentWidget(self.console)
        self.console.open()

    def _fill_overview(self, vm: VmInfo | None) -> None:
        values = {
            "Name": vm.name if vm else "",
            "State": (vm.state.value + (f" ({vm.reason})" if vm.reason else "")) if vm else "",
            "UUID": vm.vm_id if vm else "",
            "Connection": vm.connection if vm else "",
            "vCPUs": str(vm.vcpus) if vm and vm.vcpus else "",
            "Memory": format_kib(vm.memory_kib) if vm and vm.memory_kib else "",
            "Persistent": ("yes" if vm.persistent else "no") if vm else "",
            "Autostart": ("yes" if vm.autostart else "no") if vm else "",
        }
        for k, v in values.items():
            self.overview_labels[k].setText(v)

    def _fetch_xml(self) -> None:
        if self._xml_task is not None:
            self._xml_task.cancel()
        self.hardware.clear()
        if self._key is None:
            self.xml_view.setPlainText("")
            return
        self._xml_task = run_for(self, self._load_xml(self._key), "read the VM's description")

    async def _load_xml(self, key: VmKey) -> None:
        backend = self._manager.backend(key[0])
        if backend is None:
            return
        try:
            xml = await backend.details_xml(key[1])
        except BackendError as exc:  # shown in place of the XML
            xml = ""
            self.xml_view.setPlainText(f"The description is not available: {readable(exc)}")
        if key != self._key:
            return
        if xml:
            self.xml_view.setPlainText(xml)
        try:
            rows = await backend.hardware_rows(key[1]) if xml else []
        except BackendError:
            rows = []  # the XML tab says why already
        if key != self._key:
            return
        self.hardware.clear()
        for row in rows:
            self.hardware.addTopLevelItem(QTreeWidgetItem([row.device, row.description]))
        self.hardware.resizeColumnToContents(0)

    def _on_data_changed(self, top: Any, bottom: Any, roles: Any = None) -> None:
        if self._key is None:
            return
        row = self._model.row_of(self._key)
        if not top.row() <= row <= bottom.row() or top.column() > 1:
            return
        vm = self._model.vm(self._key)
        self._fill_overview(vm)
        if vm is not None and vm.state != self._shown_state:
            self._shown_state = vm.state
            self.console.show_vm(self._key, vm)
            self._fetch_xml()  # the live XML differs from the inactive one

    def _on_rows_removed(self, *_: Any) -> None:
        if self._key is not None and self._model.vm(self._key) is None:
            self.show_vm(None)

    def _on_stats(self, uri: str, keys: list[VmKey]) -> None:
        if self._key is not None and self._key[0] == uri and self._key in keys:
            self._refresh_graphs()

    def _refresh_graphs(self) -> None:
        h = self._model.history(self._key) if self._key else []
        self.cpu_graph.set_series([Series("", [r.cpu_percent for r in h])])
        self.memory_graph.set_fixed_max(float(h[-1].memory_total_kib) if h else None)
        self.memory_graph.set_series([Series("used", [float(r.memory_used_kib) for r in h])])
        latest = h[-1] if h else None
        # A VM without disks or NICs has no such I/O: no empty graph pretending otherwise.
        self.disk_graph.setVisible(latest is None or latest.disk_count != 0)
        self.net_graph.setVisible(latest is None or latest.nic_count != 0)
        self.disk_graph.set_series([
            Series("read", [r.disk_read_bps for r in h]),
            Series("write", [r.disk_write_bps for r in h]),
        ])
        self.net_graph.set_series([
            Series("rx", [r.net_rx_bps for r in h]),
            Series("tx", [r.net_tx_bps for r in h]),
        ])
        self.exits_graph.show_history(h)

    def closeEvent(self, event: Any) -> None:
        if self._xml_task is not None:
            self._xml_task.cancel()
        super().closeEvent(event)

