"""Two daemons side by side, losing and regaining a daemon, and bad connection input."""

from __future__ import annotations

import asyncio
import time

import libvirt
import pytest

from tests.backends.libvirt.helpers import EventRecorder, connection_is, dir_pool, vm_state_is
from tests.fixtures.libvirtd import PrivateLibvirtd
from vmgui.backends.base import Backend, BackendError
from vmgui.backends.libvirt import LibvirtBackend, list_connections
from vmgui.model import ConnectionState, DiskConfig, VmConfig, VmInfo, VmState

pytestmark = pytest.mark.libvirtd


def _define_plain(uri: str, name: str) -> str:
    conn = libvirt.open(uri)
    try:
        xml = (
            f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
        )
        return str(conn.defineXML(xml).UUIDString())
    finally:
        conn.close()


def _undefine(uri: str, vm_id: str) -> None:
    conn = libvirt.open(uri)
    try:
        conn.lookupByUUIDString(vm_id).undefine()
    finally:
        conn.close()


def test_unix_and_tcp_daemons_side_by_side(
    qt_loop: asyncio.AbstractEventLoop, libvirtd_uri: str, libvirtd_tcp_uri: str
) -> None:
    assert libvirtd_tcp_uri.startswith("qemu+tcp://127.0.0.1:")
    local_id = _define_plain(libvirtd_uri, "side-local")
    tcp_id = _define_plain(libvirtd_tcp_uri, "side-tcp")
    try:

        async def scenario() -> None:
            a, b = LibvirtBackend(libvirtd_uri), LibvirtBackend(libvirtd_tcp_uri)
            assert isinstance(a, Backend) and isinstance(b, Backend)
            await asyncio.gather(a.connect(), b.connect())
            try:
                va, vb = await asyncio.gather(a.list_vms(), b.list_vms())
                assert local_id in {v.vm_id for v in va} and tcp_id not in {v.vm_id for v in va}
                assert tcp_id in {v.vm_id for v in vb} and local_id not in {v.vm_id for v in vb}
                assert all(v.connection == libvirtd_tcp_uri for v in vb)
                assert b.host_name and b.status.state is ConnectionState.CONNECTED
            finally:
                await asyncio.gather(a.close(), b.close())

        qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))
        rows = qt_loop.run_until_complete(list_connections([libvirtd_uri, libvirtd_tcp_uri]))
        names = {(uri, item.name) for uri, item in rows if isinstance(item, VmInfo)}
        assert (libvirtd_uri, "side-local") in names and (libvirtd_tcp_uri, "side-tcp") in names
    finally:
        _undefine(libvirtd_uri, local_id)
        _undefine(libvirtd_tcp_uri, tcp_id)


def test_daemon_killed_then_restarted_reconnects_by_itself(
    qt_loop: asyncio.AbstractEventLoop, restartable_libvirtd: PrivateLibvirtd
) -> None:
    daemon = restartable_libvirtd
    vm_id = _define_plain(daemon.uri, "survivor")

    async def scenario() -> None:
        backend = LibvirtBackend(daemon.uri)
        await backend.connect()
        rec = await EventRecorder(backend).start()
        try:
            t0 = time.monotonic()
            daemon.kill()
            ev = await rec.wait_for(connection_is(ConnectionState.DISCONNECTED), 10)
            noticed = time.monotonic() - t0
            assert noticed < 5, f"disconnect noticed after {noticed:.1f} s"
            assert "Disconnected from" in ev.status.message  # type: ignore[union-attr]

            t1 = time.monotonic()
            with pytest.raises(BackendError, match=r"^Not connected to qemu\+unix"):
                await backend.list_vms()
            with pytest.raises(BackendError, match="Not connected"):
                await backend.start(vm_id)
            assert time.monotonic() - t1 < 0.5, "calls while disconnected must fail fast"

            mark = rec.mark()
            daemon.start()
            await rec.wait_for(connection_is(ConnectionState.CONNECTED), 20, after=mark)
            await rec.wait_for(vm_state_is(vm_id, VmState.SHUTOFF), 10, after=mark)
            assert backend.status.state is ConnectionState.CONNECTED
            assert vm_id in {v.vm_id for v in await backend.list_vms()}
        finally:
            await rec.stop()
            await backend.close()

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))


@pytest.mark.slow
def test_a_daemon_that_stops_answering_is_noticed_by_keepalive(
    qt_loop: asyncio.AbstractEventLoop, restartable_libvirtd: PrivateLibvirtd
) -> None:
    daemon = restartable_libvirtd

    async def scenario() -> None:
        backend = LibvirtBackend(daemon.uri)
        await backend.connect()
        rec = await EventRecorder(backend).start()
        try:
            t0 = time.monotonic()
            daemon.freeze()  # the socket stays open: only keepalive can tell
            await rec.wait_for(connection_is(ConnectionState.DISCONNECTED), 15)
            noticed = time.monotonic() - t0
            assert noticed < 10, f"a silent daemon was noticed only after {noticed:.1f} s"
            with pytest.raises(BackendError, match="Not connected"):
                await backend.list_vms()
            mark = rec.mark()
            daemon.thaw()
            await rec.wait_for(connection_is(ConnectionState.CONNECTED), 20, after=mark)
        finally:
            daemon.thaw()
            await rec.stop()
            await backend.close()

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("", "empty"),
        ("qemu system", "spaces"),
        ("garbage", "not a libvirt URI"),
        ("qemu+carrier-pigeon:///system", "unknown transport"),
        ("qemu+tcp://host:port/system", "not a valid URI"),
    ],
)
def test_malformed_uri_is_refused_up_front(
    qt_loop: asyncio.AbstractEventLoop, uri: str, words: str
) -> None:
    backend = LibvirtBackend(uri)
    with pytest.raises(BackendError, match=words):
        qt_loop.run_until_complete(backend.connect())
    assert backend.status.state is ConnectionState.DISCONNECTED
    assert backend.status.message and words in backend.status.message
    with pytest.raises(BackendError, match="Not connected"):
        qt_loop.run_until_complete(backend.list_vms())
    qt_loop.run_until_complete(backend.close())


def test_unreachable_uri_fails_with_a_clear_sentence(qt_loop: asyncio.AbstractEventLoop) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"qemu+tcp://127.0.0.1:{port}/system"
    backend = LibvirtBackend(uri)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        qt_loop.run_until_complete(backend.connect())
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert msg.startswith(f"Cannot connect to {uri}:") and "Connection refused" in msg
    assert "\n" not in msg and "error:" not in msg.lower()
    assert backend.status.state is ConnectionState.DISCONNECTED and backend.status.message == msg
    qt_loop.run_until_complete(backend.close())
    rows = qt_loop.run_until_complete(list_connections([uri]))
    assert len(rows) == 1 and isinstance(rows[0][1], BackendError)


def test_bad_actions_give_sentences_and_lose_nothing(
    qt_loop: asyncio.AbstractEventLoop, backend: LibvirtBackend, libvirtd_uri: str, vm_name: str
) -> None:
    async def scenario() -> None:
        # a name libvirt rejects ('/' breaks its per-VM file paths) is refused before reaching it
        with pytest.raises(BackendError, match="not allowed"):
            await backend.define(VmConfig(name="a/b", domain_type="qemu", network="none"))

        info = await backend.define(
            VmConfig(name=vm_name, memory_mib=64, domain_type="qemu", network="none")
        )
        # same name again: refused, the first VM is untouched
        with pytest.raises(BackendError) as dup:
            await backend.define(
                VmConfig(name=vm_name, memory_mib=256, domain_type="qemu", network="none")
            )
        assert "already exists" in str(dup.value) and vm_name in str(dup.value)
        again = {v.vm_id: v for v in await backend.list_vms()}[info.vm_id]
        assert again.memory_kib == 64 * 1024

        # an error in the middle of an action: pausing a VM that is not running
        with pytest.raises(BackendError) as bad:
            await backend.pause(info.vm_id)
        msg = str(bad.value)
        assert msg.startswith(f"Cannot pause '{vm_name}':") and "not running" in msg
        assert "Requested operation" not in msg

        # an unknown VM id
        with pytest.raises(BackendError, match="no longer exists"):
            await backend.start("00000000-0000-0000-0000-0000000000ff")

        await backend.delete(info.vm_id)
        assert info.vm_id not in {v.vm_id for v in await backend.list_vms()}

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_delete_is_refused_while_running_and_removes_storage_after(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    vm_name: str,
) -> None:
    with dir_pool(libvirtd.uri, libvirtd.home, vm_name) as (conn, pool_dir):
        image = pool_dir / f"{vm_name}.raw"

        async def scenario() -> None:
            cfg = VmConfig(
                name=vm_name,
                memory_mib=64,
                domain_type="qemu",
                network="none",
                disks=[DiskConfig(str(image), size_bytes=1 << 20)],
            )
            info = await backend.define(cfg)
            assert image.stat().st_size == 1 << 20
            # a second VM may not silently take over an existing image
            with pytest.raises(BackendError, match="already exists"):
                await backend.define(VmConfig(name=vm_name + "-2", disks=cfg.disks, domain_type="qemu"))
            assert image.exists()

            await backend.start(info.vm_id)
            with pytest.raises(BackendError) as running:
                await backend.delete(info.vm_id, [str(image)])
            assert str(running.value) == (
                f"Cannot delete '{vm_name}' while it is running: shut it down first."
            )
            assert image.exists()
            assert info.vm_id in {v.vm_id for v in await backend.list_vms()}

            await backend.force_off(info.vm_id)
            await backend.delete(info.vm_id, [str(image)])
            assert not image.exists()
            assert info.vm_id not in {v.vm_id for v in await backend.list_vms()}

        qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))
