"""Fixtures shared by the VMM's QMP tests: a QMP server on a recording stand-in machine.

The stand-in is only for protocol-level tests of the server itself; end-to-end tests drive the
real VMM (tests/vmm/test_qmp_machine.py). A module may define its own `machine` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vmm.test_qmp_protocol import FakeMachine
from vmgui.vmm.qmp import QmpServer


@pytest.fixture
def machine() -> Iterator[FakeMachine]:
    m = FakeMachine()
    yield m
    m.fb.close()


@pytest.fixture
def server(machine: FakeMachine, tmp_path: Path) -> Iterator[QmpServer]:
    srv = QmpServer(machine, tmp_path / "qmp.sock")
    srv.start_thread()
    yield srv
    srv.stop_thread()
