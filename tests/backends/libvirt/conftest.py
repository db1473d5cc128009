"""Fixtures for the libvirt backend tests: a connected backend on the GUI's qasync loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from tests.backends.libvirt.helpers import remove_domain
from vmgui.backends.libvirt import LibvirtBackend


@pytest.fixture
def backend(qt_loop: asyncio.AbstractEventLoop, libvirtd_uri: str) -> Iterator[LibvirtBackend]:
    """A LibvirtBackend connected to the session's private libvirtd."""
    b = LibvirtBackend(libvirtd_uri)
    qt_loop.run_until_complete(b.connect())
    yield b
    qt_loop.run_until_complete(b.close())


@pytest.fixture
def vm_name(libvirtd_uri: str) -> Iterator[str]:
    """A unique VM name on the shared daemon, removed again after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    remove_domain(libvirtd_uri, name)
