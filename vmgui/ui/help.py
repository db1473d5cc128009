"""The Help menu's two windows: About (name, version, what it is) and the keyboard shortcuts.

The shortcuts are read from the window's own actions, so the list cannot drift from what the
keys really do (the README's table is the same list).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QWidget

from vmgui import __version__

#: Keys that are not actions of their own (they act inside a widget).
EXTRA_SHORTCUTS = (("Clear the filter", "Escape (in the filter box)"),)


def about_text() -> str:
    return (
        f"<h3>vmgui {escape(__version__)}</h3>"
        "<p>A desktop manager for virtual machines: libvirt hosts (local, or remote over ssh "
        "and tcp) and this computer's own KVM virtual machine monitor.</p>"
        "<p>License: GPL-3.0-or-later.</p>"
    )


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(what, keys) for every action with a shortcut, in the given order, then the extras."""
    rows: list[tuple[str, str]] = []
    for action in actions:
        keys = action.shortcut().toString()
        if keys:
            what = action.text().replace("&", "").rstrip("…").strip()
            rows.append((what, keys))
    return [*dict.fromkeys(rows), *EXTRA_SHORTCUTS]


def shortcuts_html(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><td>{escape(what)}</td><td>&nbsp;&nbsp;<b>{escape(keys)}</b></td></tr>"
        for what, keys in rows
    )
    return f"<table>{body}</table>"


def _show(parent: QWidget, name: str, title: str, html: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, "", QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName(name)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(html)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()  # window-modal without a nested event loop
    return box


def show_about(parent: QWidget) -> QMessageBox:
    return _show(parent, "aboutBox", "About vmgui", about_text())


def show_shortcuts(parent: QWidget, actions: Iterable[QAction]) -> QMessageBox:
    return _show(parent, "shortcutsBox", "Keyboard Shortcuts",
                 shortcuts_html(shortcut_rows(actions)))
