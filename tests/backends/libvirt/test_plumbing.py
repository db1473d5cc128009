"""How the backend runs: who drives libvirt's events, credentials asked on the loop, the CLI path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import libvirt

from tests.backends.libvirt.helpers import EventRecorder, vm_state_is
from vmgui.backends.base import BackendError
from vmgui.backends.libvirt import CredentialPrompt, LibvirtBackend, list_all, list_connections
from vmgui.backends.libvirt.credentials import CredentialsBridge
from vmgui.backends.libvirt.eventloop import ensure_event_loop
from vmgui.model import VmInfo, VmState


def test_qt_glib_loop_drives_libvirt_events(qt_loop: asyncio.AbstractEventLoop) -> None:
    async def which() -> str:
        return ensure_event_loop()

    assert qt_loop.run_until_complete(which()) == "glib-host"


def test_cli_listing_works_on_plain_asyncio(test_driver_1000: Path) -> None:
    """`vmgui list` runs without Qt: the pump drives libvirt, and a bad URI is one row."""
    good = f"test://{test_driver_1000}"

    async def run() -> tuple[str, list[tuple[str, VmInfo | BackendError]], int]:
        rows = await list_connections([good, "nonsense"])
        # lifecycle events arrive without Qt too (the pump drives libvirt's event loop)
        backend = LibvirtBackend(good)
        await backend.connect()
        rec = await EventRecorder(backend).start()
        off = next(v for v in await backend.list_vms() if v.state is VmState.SHUTOFF)
        await backend.start(off.vm_id)
        await rec.wait_for(vm_state_is(off.vm_id, VmState.RUNNING), 5)
        await rec.stop()
        await backend.close()
        return ensure_event_loop(), rows, len(await list_all([good]))

    driver, rows, total = asyncio.run(run())
    assert driver == "pump" and total == 1000
    vms = [item for uri, item in rows if uri == good]
    assert len(vms) == 1000 and all(isinstance(v, VmInfo) for v in vms)
    assert [v.name for v in vms if isinstance(v, VmInfo)][:2] == ["vm0000", "vm0001"]
    bad = [item for uri, item in rows if uri == "nonsense"]
    assert len(bad) == 1 and isinstance(bad[0], BackendError)
    assert "not a libvirt URI" in str(bad[0])


def test_credentials_are_asked_on_the_loop_and_answered(
    qt_loop: asyncio.AbstractEventLoop,
) -> None:
    """openAuth calls back on an executor thread; the UI's coroutine runs on the loop."""
    asked: list[tuple[str, list[CredentialPrompt]]] = []

    async def ask(uri: str, prompts: list[CredentialPrompt]) -> list[str] | None:
        asked.append((uri, prompts))
        await asyncio.sleep(0)
        return ["alice", "s3cret"]

    backend = LibvirtBackend("qemu+tcp://example.invalid/system", ask_credentials=ask)

    async def scenario() -> tuple[int, list[list[object]]]:
        bridge = CredentialsBridge(backend.uri, ask)
        bridge.loop = asyncio.get_running_loop()
        creds: list[list[object]] = [
            [libvirt.VIR_CRED_AUTHNAME, "Username", "", "root", None],
            [libvirt.VIR_CRED_PASSPHRASE, "Password", "", "", None],
        ]
        rc = await asyncio.get_running_loop().run_in_executor(
            None, bridge.answer_blocking, creds, None
        )
        return rc, creds

    rc, creds = qt_loop.run_until_complete(scenario())
    assert rc == 0 and [c[4] for c in creds] == ["alice", "s3cret"]
    ((uri, prompts),) = asked
    assert uri == "qemu+tcp://example.invalid/system"
    assert [(p.kind, p.secret, p.default) for p in prompts] == [
        ("username", False, "root"),
        ("password", True, ""),
    ]
    qt_loop.run_until_complete(backend.close())


def test_cancelled_credentials_fail_the_open(qt_loop: asyncio.AbstractEventLoop) -> None:
    async def cancel(uri: str, prompts: list[CredentialPrompt]) -> list[str] | None:
        return None

    backend = LibvirtBackend("qemu+tcp://example.invalid/system", ask_credentials=cancel)

    async def scenario() -> int:
        bridge = CredentialsBridge(backend.uri, cancel)
        bridge.loop = asyncio.get_running_loop()
        creds: list[list[object]] = [[libvirt.VIR_CRED_PASSPHRASE, "Password", "", "", None]]
        return await asyncio.get_running_loop().run_in_executor(
            None, bridge.answer_blocking, creds, None
        )

    assert qt_loop.run_until_complete(scenario()) == -1
    qt_loop.run_until_complete(backend.close())
