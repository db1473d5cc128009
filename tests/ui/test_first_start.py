"""First start: this computer's libvirt is added and connected without asking, once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.ui.conftest import run_until
from vmgui.app import add_local_libvirt
from vmgui.model import ConnectionState
from vmgui.settings import Settings, load_settings

pytestmark = [pytest.mark.libvirtd]


def test_first_start_connects_local_libvirt_without_asking(
    qt_loop: asyncio.AbstractEventLoop, make_window: Any, libvirtd_uri: str, config_home: Any
) -> None:
    settings = Settings()
    qt_loop.run_until_complete(add_local_libvirt(settings, lambda: libvirtd_uri))
    assert settings.connections == [libvirtd_uri] and load_settings() == settings
    w = make_window(settings=settings)

    def connected() -> bool:
        status = w.manager.status(libvirtd_uri)
        return status is not None and status.state is ConnectionState.CONNECTED

    run_until(qt_loop, connected, what="the local libvirt to connect")
    assert w.last_dialog is None  # nothing was asked

    # Removed by the user: the next start does not bring it back.
    settings.connections.clear()
    qt_loop.run_until_complete(add_local_libvirt(settings, lambda: libvirtd_uri))
    assert settings.connections == []
