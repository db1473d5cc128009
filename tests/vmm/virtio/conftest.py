"""Fixtures for virtio device-model tests: real guest memory and a transport around a device."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vmgui.vmm.memory import GuestMemory

GUEST_RAM = 4 << 20


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    m = GuestMemory.create(GUEST_RAM)
    yield m
    m.close()
