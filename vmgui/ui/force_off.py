"""Force Off's two questions: "are you sure?" before it, and "force it off?" after a shutdown
request the guest seems to ignore; and Force Reset's "are you sure?".

Force Off is pulling the power plug, Force Reset pressing the reset button: either way the guest
loses what it had not written. So each asks first, with one "Don't ask again" the settings
remember for both. A graceful shut down is only a request (the ACPI
power button); when the VM is still running FORCE_OFF_OFFER_S later, the user is offered Force
Off instead of being left to wonder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QMessageBox, QWidget

from vmgui.settings import Settings
from vmgui.ui.tasks import exec_async

#: How long a VM may take to shut down before Force Off is offered (seconds).
FORCE_OFF_OFFER_S = 60.0
FORCE_OFF = "Force Off"
FORCE_RESET = "Force Reset"


def _box(
    parent: QWidget | None, name: str, text: str, info: str, title: str = FORCE_OFF
) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.NoButton,
                      parent)
    box.setObjectName(name)
    box.setInformativeText(info)
    box.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)
    return box


async def _answer(box: QMessageBox, yes_text: str, no: QMessageBox.StandardButton) -> bool:
    yes = box.addButton(yes_text, QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(no)
    box.setDefaultButton(cancel)  # Enter must not pull the plug
    box.setEscapeButton(cancel)
    try:
        await exec_async(box)
        return box.clickedButton() is yes
    finally:
        if shiboken6.isValid(box):
            box.deleteLater()


async def confirm_force_off(
    parent: QWidget | None, vm_name: str, settings: Settings, save: Callable[[], None]
) -> bool:
    """True to go ahead; asks unless the user said "Don't ask again" (then `save()`s that)."""
    return await _confirm_forced(
        parent, "confirmForceOff", FORCE_OFF, f"Force off “{vm_name}”?",
        "This is like pulling the power plug: the guest loses unsaved data and its file "
        "systems may need checking. Shut Down asks the guest to power off cleanly.",
        settings, save,
    )  # fmt: skip


async def confirm_force_reset(
    parent: QWidget | None, vm_name: str, settings: Settings, save: Callable[[], None]
) -> bool:
    """Force Reset's question, under the same "Don't ask again" as Force Off's."""
    return await _confirm_forced(
        parent, "confirmForceReset", FORCE_RESET, f"Force reset “{vm_name}”?",
        "This is like pressing the reset button: the guest restarts at once, loses unsaved "
        "data, and its file systems may need checking. Reboot asks the guest to restart.",
        settings, save,
    )  # fmt: skip


async def _confirm_forced(
    parent: QWidget | None, name: str, action: str, text: str, info: str,
    settings: Settings, save: Callable[[], None],
) -> bool:  # fmt: skip
    if not settings.confirm_force_off:  # "Don't ask again" covers both forced actions
        return True
    box = _box(parent, name, text, info, action)
    dont_ask = QCheckBox("Don't ask again")
    box.setCheckBox(dont_ask)
    go = await _answer(box, action, QMessageBox.StandardButton.Cancel)
    if go and dont_ask.isChecked():
        settings.confirm_force_off = False
        save()
    return go


async def offer_force_off(
    parent: QWidget | None,
    vm_name: str,
    still_running: Callable[[], bool],
    delay_s: float | None = None,
) -> bool:
    """After a shutdown request: wait, and if the VM still runs, offer Force Off (True: do it)."""
    await asyncio.sleep(FORCE_OFF_OFFER_S if delay_s is None else delay_s)
    if not still_running():
        return False
    waited = FORCE_OFF_OFFER_S if delay_s is None else delay_s
    box = _box(
        parent,
        "offerForceOff",
        f"“{vm_name}” is still running {waited:g} s after it was asked to shut down.",
        "Its guest may not react to the power button (no ACPI support, or it is busy or "
        "asking a question on its screen). Force Off stops it at once; unsaved data is lost.",
    )
    return await _answer(box, FORCE_OFF, QMessageBox.StandardButton.Ignore) and still_running()
