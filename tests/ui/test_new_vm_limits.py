"""The wizard's memory and vCPU limits are the connection's host's (virNodeGetInfo)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from tests.ui.conftest import run_until
from vmgui.ui.new_vm_wizard import NewVmWizard

NODE = """<node>
  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>
       <cores>{cpus}</cores><threads>1</threads><active>{cpus}</active></cpu>
  <memory>{kib}</memory>
</node>
"""


@pytest.fixture
def node_backend(
    request: pytest.FixtureRequest, qt_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> Iterator[Any]:
    from vmgui.backends.libvirt import LibvirtBackend

    cpus, mib = request.param
    node = tmp_path / "node.xml"
    node.write_text(NODE.format(cpus=cpus, kib=mib * 1024))
    b = LibvirtBackend(f"test://{node}", reconnect=False)
    qt_loop.run_until_complete(b.connect())
    yield b
    qt_loop.run_until_complete(b.close())


@pytest.mark.parametrize(
    ("node_backend", "cpus", "mib"),
    [((64, 262144), 64, 262144), ((1, 512), 1, 512)],
    indirect=["node_backend"],
    ids=["bigger-host", "smaller-host"],
)
def test_limits_come_from_the_connections_host(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, node_backend: Any, cpus: int, mib: int
) -> None:
    wizard = NewVmWizard([(node_backend.uri, "Host", node_backend)], None)
    qtbot.addWidget(wizard)
    wizard.show()
    run_until(qt_loop, wizard.facts_ready, what="host and connection facts")
    page = wizard.resources
    assert page.vcpus.maximum() == cpus
    assert page.memory.maximum() == mib
    page.initializePage()
    assert f"{mib:,} MiB" in page.host_hint.text() and f"{cpus} CPU" in page.host_hint.text()
    assert "this computer's" not in page.host_hint.text()
