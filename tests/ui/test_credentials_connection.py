"""A connection that asks for a password (a private libvirtd with SASL, as a remote host would)
is asked once: the New VM wizard and the host page read its capabilities through the connection
already open, never through a second one."""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtWidgets import QApplication

from tests.fixtures.libvirtd import PrivateLibvirtd
from tests.ui.conftest import run_until, wait_dialog
from vmgui.model import ConnectionState
from vmgui.model.credentials import CredentialPrompt
from vmgui.ui.dialogs import CredentialsDialog
from vmgui.ui.main_window import MainWindow
from vmgui.ui.new_vm_wizard import NewVmWizard


def _wizard() -> NewVmWizard | None:
    for w in QApplication.topLevelWidgets():
        if isinstance(w, NewVmWizard) and w.isVisible():
            return w
    return None


def test_wizard_and_host_page_use_the_open_authenticated_connection(
    make_window: Any, qt_loop: asyncio.AbstractEventLoop, libvirtd_sasl: PrivateLibvirtd
) -> None:
    uri = libvirtd_sasl.uri
    w: MainWindow = make_window([uri])
    asked: list[list[str]] = []
    answer_dialog = w.ask_credentials

    async def counting(uri: str, prompts: list[CredentialPrompt]) -> list[str] | None:
        asked.append([p.kind for p in prompts])
        return await answer_dialog(uri, prompts)

    w.ask_credentials = counting  # type: ignore[method-assign]

    # The person types the user name and password once, in the dialog the connection opens.
    dialog = wait_dialog(qt_loop, lambda: w.last_dialog)
    assert isinstance(dialog, CredentialsDialog)
    kinds = asked[0]
    assert "password" in kinds and "username" in kinds
    for kind, field in zip(kinds, dialog.fields, strict=True):
        field.setText(libvirtd_sasl.sasl_password if kind == "password"
                      else libvirtd_sasl.sasl_user)
    dialog.accept()
    run_until(
        qt_loop,
        lambda: (s := w.manager.status(uri)) is not None and s.state is ConnectionState.CONNECTED,
        what="the authenticated connection",
    )
    assert len(asked) == 1

    # New VM: the capabilities come through the open connection (a second connection would
    # need the password again, and without the callback it cannot get one).
    w.select_connection(uri)  # the wizard proposes the connection in view
    w.new_vm_action.trigger()
    run_until(qt_loop, lambda: _wizard() is not None, what="the wizard")
    wizard = _wizard()
    assert wizard is not None
    run_until(qt_loop, wizard.facts_ready, what="the connection's facts")
    caps = wizard.state.facts.caps[uri]
    assert caps.error == "" and "qemu" in caps.domain_types and caps.machines
    wizard.reject()

    # The host page's per-connection section reads them the same way.
    w.select_connection("builtin:///")
    w.builtin_tabs.setCurrentIndex(w.builtin_tabs.HOST)
    run_until(qt_loop, lambda: w.host_page.status is not None, timeout=60, what="host check")
    assert w.host_page.status is not None
    (conn,) = w.host_page.status.connections
    assert conn.uri == uri and conn.error == "" and "qemu" in conn.domain_types
    assert asked == [kinds]  # asked once, for the one connection
    assert w.last_error == ""
