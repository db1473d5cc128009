"""Editing a defined TCG guest through the Edit dialog: libvirt's XML shows it after a start."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from tests.backends.libvirt.helpers import remove_domain
from tests.fixtures.libvirtd import PrivateLibvirtd
from tests.ui.conftest import run_until, wait_dialog
from vmgui.model import DiskConfig, VmConfig, VmInfo
from vmgui.ui.edit_vm_dialog import EditVmDialog, edit_vm

pytestmark = [pytest.mark.libvirtd]


def _open(qt_loop: asyncio.AbstractEventLoop, parent: QWidget, backend: Any, vm: VmInfo
          ) -> tuple[EditVmDialog, asyncio.Task[str]]:
    box: list[EditVmDialog] = []
    task = asyncio.ensure_future(edit_vm(parent, backend, vm, box.append))
    dialog = wait_dialog(qt_loop, lambda: box[0] if box else None)
    return dialog, task


def test_edit_memory_vcpus_boot_order_and_media_of_a_tcg_guest(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    libvirtd: PrivateLibvirtd,
) -> None:
    import libvirt

    name = f"edit-{uuid.uuid4().hex[:6]}"
    folder = libvirtd.home / name
    folder.mkdir()
    folder.chmod(0o777)  # the daemon's user makes the pool folder in it
    isos = []
    for n in ("install", "drivers"):
        iso = folder / f"{n}.iso"
        iso.write_bytes(b"\0" * 65536)
        iso.chmod(0o644)
        isos.append(str(iso))
    conn = libvirt.open(libvirtd.uri)
    pool = conn.storagePoolCreateXML(
        f"<pool type='dir'><name>{name}</name><target><path>{folder}/pool</path></target></pool>",
        libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD,
    )

    window = QWidget()  # the dialog's parent: closing the dialog must not quit the app
    qtbot.addWidget(window)
    window.show()

    def xml(flags: int = 0) -> ET.Element:
        return ET.fromstring(conn.lookupByName(name).XMLDesc(flags))

    try:
        vm = qt_loop.run_until_complete(backend.define(VmConfig(
            name=name, memory_mib=64, domain_type="qemu", network="none", iso=isos[0],
            disks=[DiskConfig(f"{folder}/pool/{name}.raw", size_bytes=1 << 20)])))

        dialog, task = _open(qt_loop, window, backend, vm)
        assert dialog.memory.value() == 64 and dialog.vcpus.value() == 1
        assert dialog.boot_order() == ("cdrom", "hd")
        assert [r.path.text() for r in dialog.cdroms] == [isos[0]]
        assert not dialog.note.isVisible()  # not running: nothing waits for a restart
        dialog.memory.setValue(96)
        dialog.vcpus.setValue(1000)  # more than machine 'pc' allows: libvirt says so
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
        run_until(qt_loop, dialog.error.isVisible, what="libvirt's refusal")
        assert dialog.isVisible() and "\n" not in dialog.error.text()
        assert "CPU" in dialog.error.text() or "vcpu" in dialog.error.text().lower()
        assert dialog.memory.value() == 96  # nothing typed was lost
        dialog.vcpus.setValue(2)
        dialog.boot_list.setCurrentRow(1)  # Hard disk
        dialog.move_boot_device(-1)
        dialog.cdroms[0].path.setText(isos[1])
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
        run_until(qt_loop, lambda: task.done() or dialog.error.isVisible(), what="apply")
        assert task.result() == f"Saved the changes to “{name}”.", dialog.error.text()

        qt_loop.run_until_complete(backend.start(vm.vm_id))
        live = xml()
        assert live.find("memory").text == str(96 * 1024)  # type: ignore[union-attr]
        assert live.findtext("vcpu") == "2"
        assert [b.get("dev") for b in live.findall("os/boot")] == ["hd", "cdrom"]
        cd = live.find("devices/disk[@device='cdrom']/source")
        assert cd is not None and cd.get("file") == isos[1]

        # Running: media change at once, the rest waits for the next start and says so.
        running = next(v for v in qt_loop.run_until_complete(backend.list_vms())
                       if v.vm_id == vm.vm_id)
        dialog, task = _open(qt_loop, window, backend, running)
        assert dialog.note.isVisible() and "next start" in dialog.note.text()
        dialog.memory.setValue(128)
        qtbot.mouseClick(dialog.cdroms[0].eject, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
        run_until(qt_loop, task.done, what="the dialog to apply")
        assert task.result() == f"Saved the changes to “{name}”; they apply at its next start."
        cd_live = xml().find("devices/disk[@device='cdrom']")
        assert cd_live is not None
        assert cd_live.find("source[@file]") is None  # ejected now (libvirt keeps <source index>)
        assert xml().find("memory").text == str(96 * 1024)  # type: ignore[union-attr]
        inactive = xml(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert inactive.find("memory").text == str(128 * 1024)  # type: ignore[union-attr]
    finally:
        remove_domain(libvirtd.uri, name)
        pool.destroy()
        conn.close()
