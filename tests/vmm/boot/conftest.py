"""Fixtures for the loader tests: guest memory that is always released, the real Debian kernel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import need
from vmgui.vmm.memory import GuestMemory

DEBIAN_KERNEL = Path(__file__).resolve().parents[3] / ".cache/debian-kernel/vmlinuz"


@pytest.fixture
def make_mem() -> Iterator[Callable[[int], GuestMemory]]:
    """`make_mem(size)` -> GuestMemory, closed at teardown."""
    made: list[GuestMemory] = []

    def make(size: int) -> GuestMemory:
        mem = GuestMemory.create(size)
        made.append(mem)
        return mem

    yield make
    for mem in made:
        mem.close()


@pytest.fixture(scope="session")
def debian_kernel() -> bytes:
    need(DEBIAN_KERNEL.exists(), f"{DEBIAN_KERNEL} missing (run tests/fetch_assets.sh)")
    return DEBIAN_KERNEL.read_bytes()
