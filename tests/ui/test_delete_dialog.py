"""The delete dialog: one checkbox per disk, refused storage disabled with its reason."""

from __future__ import annotations

from vmgui.model import StorageItem
from vmgui.ui.delete_dialog import DeleteVmDialog

NODE_NOTE = "a host device, not an image file: vmgui never deletes it"


def test_each_storage_item_has_its_own_checkbox_and_reason(qtbot: object) -> None:
    items = [
        StorageItem("/img/a.qcow2", "vda", deletable=True),
        StorageItem("/dev/sdb", "vdb", deletable=False, note=NODE_NOTE),
        StorageItem("/img/base.raw", "vdc", deletable=True, used_by=("web", "db")),
        StorageItem("/isos/install.iso", "hdc", is_cdrom=True, deletable=True),
    ]
    d = DeleteVmDialog("vm1", items)
    qtbot.addWidget(d)  # type: ignore[attr-defined]
    boxes = d.storage_boxes
    assert list(boxes) == [i.path for i in items]
    assert boxes["/img/a.qcow2"].isChecked() and boxes["/img/a.qcow2"].isEnabled()
    assert not boxes["/dev/sdb"].isEnabled() and not boxes["/dev/sdb"].isChecked()
    assert d.notes["/dev/sdb"].text() == NODE_NOTE[0].upper() + NODE_NOTE[1:] + "."
    assert not boxes["/img/base.raw"].isChecked()  # shared with other VMs: opt in only
    assert "web, db" in d.notes["/img/base.raw"].text()
    assert not boxes["/isos/install.iso"].isChecked()
    assert d.chosen_paths() == ["/img/a.qcow2"]
    assert d.delete_button.text() == "Delete VM and 1 storage file"
    boxes["/img/base.raw"].setChecked(True)
    boxes["/dev/sdb"].setChecked(True)  # even if forced, a disabled box is never chosen
    assert d.chosen_paths() == ["/img/a.qcow2", "/img/base.raw"]
    assert d.delete_button.text() == "Delete VM and 2 storage files"
    for box in boxes.values():
        box.setChecked(False)
    assert d.delete_button.text() == "Delete VM only"
