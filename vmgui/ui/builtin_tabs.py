"""Two views of "This computer (built-in)": its VMs, and whether it can run them fast.

Shown above the main window's pages only while that sidebar entry is in view, so the host
check stays one click away from the list it explains.
"""

from __future__ import annotations

from PySide6.QtWidgets import QTabBar, QWidget


class BuiltinTabs(QTabBar):
    VMS = 0
    HOST = 1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("builtinTabs")
        self.addTab("Virtual machines")
        self.addTab("Can this computer run VMs?")
        self.setDocumentMode(True)
        self.setExpanding(False)
        self.hide()
