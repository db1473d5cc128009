"""libvirt consoles: the VNC display through virDomainOpenGraphicsFD into our RFB client, and
the serial console as a non-blocking stream on the GUI's loop (Qt drives libvirt's events).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import libvirt
import numpy as np
import pytest

from tests.backends.libvirt.helpers import remove_domain
from tests.console.rfb.qemu_vnc import build_grub_iso
from tests.fixtures.libvirtd import GUEST_READY_MARKER, PrivateLibvirtd, TcgDomainXml
from vmgui.backends.base import BackendError
from vmgui.backends.libvirt import LibvirtBackend
from vmgui.backends.libvirt.console import DisplayInfo, VncListen, display_info, vnc_endpoint
from vmgui.console.rfb import RfbSource
from vmgui.model.console import SshTunnel, VncEndpoint

pytestmark = [pytest.mark.slow, pytest.mark.libvirtd]


def libvirt_screenshot(uri: str, vm_id: str) -> np.ndarray:
    """virDomainScreenshot (PNG or PPM, as QEMU chooses) as (h, w) 0x00RRGGBB."""
    conn = libvirt.open(uri)
    try:
        stream = conn.newStream(0)
        conn.lookupByUUIDString(vm_id).screenshot(stream, 0, 0)
        chunks: list[bytes] = []
        stream.recvAll(lambda _s, data, _o: chunks.append(data) or len(data), None)
        stream.finish()
    finally:
        conn.close()
    from PySide6.QtGui import QImage

    image = QImage.fromData(b"".join(chunks)).convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull()
    w, h = image.width(), image.height()
    rows = np.frombuffer(image.constBits(), dtype="<u4").reshape(h, image.bytesPerLine() // 4)
    return rows[:, :w] & 0xFFFFFF


def started_paused(uri: str, xml: str) -> str:
    conn = libvirt.open(uri)
    try:
        dom = conn.defineXML(xml)
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        return str(dom.UUIDString())
    finally:
        conn.close()


def test_serial_then_screen_of_a_tcg_guest(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    tcg_domain_xml: TcgDomainXml,
    vm_name: str,
) -> None:
    vm = started_paused(libvirtd.uri, tcg_domain_xml(vm_name, vnc=True))  # no output missed

    async def scenario() -> None:
        serial = await backend.open_serial(vm)
        await backend.resume(vm)
        seen = b""
        deadline = time.monotonic() + 90
        while GUEST_READY_MARKER.encode() not in seen:
            assert time.monotonic() < deadline, f"serial console so far: {seen[-300:]!r}"
            chunk = await asyncio.wait_for(serial.read(), deadline - time.monotonic())
            assert chunk, f"serial ended early: {serial.reason}"  # type: ignore[attr-defined]
            seen += chunk
        await serial.write(b"\r")  # input is accepted (the guest ignores it)

        await backend.pause(vm)  # a still screen, so "the same moment" is well defined
        endpoints = await backend.open_console(vm)
        assert endpoints.has_serial and endpoints.problem == ""
        ep = endpoints.graphics
        assert isinstance(ep, VncEndpoint) and ep.fd >= 0 and ep.local  # no port, no password
        source = RfbSource(ep)
        started = time.monotonic()
        await source.start()
        first_frame_s = time.monotonic() - started
        reference = await asyncio.get_running_loop().run_in_executor(
            None, libvirt_screenshot, libvirtd.uri, vm
        )
        assert source.client is not None
        frame = source.client.pixels & 0xFFFFFF
        assert frame.shape == reference.shape
        assert int((frame != reference).sum()) == 0
        assert first_frame_s < 10, first_frame_s
        await source.close()

        await backend.force_off(vm)
        while await asyncio.wait_for(serial.read(), 30):
            pass  # drain until EOF
        assert "serial console" in serial.reason  # type: ignore[attr-defined]
        await serial.close()
        with pytest.raises(BackendError, match="not running"):
            await backend.open_console(vm)

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 180))


def test_vm_without_graphics_gets_a_sentence(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    tcg_domain_xml: TcgDomainXml,
    vm_name: str,
) -> None:
    vm = started_paused(libvirtd.uri, tcg_domain_xml(vm_name))
    endpoints = qt_loop.run_until_complete(backend.open_console(vm))
    assert endpoints.graphics is None and endpoints.problem == f"{vm_name!r} has no graphical display."


SPICE_ONLY = """<domain><devices><graphics type='spice' port='5901'/>
<serial type='file'/></devices></domain>"""
VNC_XML = """<domain><devices><graphics type='spice'/>
<graphics type='vnc' port='5905' listen='0.0.0.0' passwd='pw'>
<listen type='address' address='0.0.0.0'/></graphics>
<console type='pty'/></devices></domain>"""


def test_display_info_from_xml() -> None:
    assert display_info(SPICE_ONLY) == DisplayInfo(None, ("spice",), False)
    info = display_info(VNC_XML)
    assert info.vnc == VncListen(1, "0.0.0.0", 5905, "", "pw") and info.has_serial


def test_where_the_display_is_reached_from_here() -> None:
    listen = VncListen(0, "0.0.0.0", 5905, "", None)
    ssh = vnc_endpoint("qemu+ssh://ann@far.example:2222/system", listen, "vm")
    assert (ssh.host, ssh.port, ssh.local) == ("127.0.0.1", 5905, False)
    assert ssh.tunnel == SshTunnel(host="far.example", user="ann", port=2222)
    tcp = vnc_endpoint("qemu+tcp://far.example/system", listen, "vm")
    assert (tcp.host, tcp.port, tcp.tunnel) == ("far.example", 5905, None)
    loop_only = VncListen(0, "127.0.0.1", 5905, "", None)
    with pytest.raises(BackendError, match="qemu\\+ssh"):
        vnc_endpoint("qemu+tcp://far.example/system", loop_only, "vm")
    sock = vnc_endpoint("qemu+ssh://far.example/system", VncListen(0, "", -1, "/run/v", None), "vm")
    assert sock.path == "/run/v" and sock.tunnel is not None
    with pytest.raises(BackendError, match="no port"):
        vnc_endpoint("qemu+tcp://far.example/system", VncListen(0, "", -1, "", None), "vm")


GRUB_MENU = """\
serial --unit=0 --speed=115200
terminal_input console
terminal_output console serial
set timeout=-1
menuentry "first" { echo VMGUI-GRUB-FIRST; sleep --interruptible 100000 }
menuentry "second" { echo VMGUI-GRUB-SECOND; sleep --interruptible 100000 }
"""
DOWN = (0xD0, 0xFF54)  # E0 50 in QEMU's numbering, XK_Down
ENTER = (0x1C, 0xFF0D)


def grub_domain_xml(name: str, iso: str) -> str:
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='cdrom'/></os>
  <devices>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/><source file='{iso}'/>
      <target dev='hdc' bus='ide'/><readonly/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' port='-1' listen='127.0.0.1'/>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>"""


def test_keys_reach_grub_over_a_tcp_connection(
    qt_loop: asyncio.AbstractEventLoop, libvirtd_tcp: PrivateLibvirtd, vm_name: str
) -> None:
    """qemu+tcp://: the display's address comes from the live XML (no fd passing); Down + Enter
    sent through the RFB client pick GRUB's second entry, whose marker the serial console shows."""
    shared = Path(tempfile.mkdtemp(prefix="vmgui-grub-", dir="/tmp"))
    shared.chmod(0o755)
    backend = LibvirtBackend(libvirtd_tcp.tcp_uri)
    try:
        iso = build_grub_iso(shared, GRUB_MENU)
        iso.chmod(0o644)
        vm = started_paused(libvirtd_tcp.uri, grub_domain_xml(vm_name, str(iso)))

        async def read_until(serial: object, marker: bytes, seen: bytes) -> bytes:
            deadline = time.monotonic() + 60
            while marker not in seen:
                assert time.monotonic() < deadline, f"serial so far: {seen[-400:]!r}"
                chunk = await asyncio.wait_for(serial.read(), deadline - time.monotonic())  # type: ignore[attr-defined]
                assert chunk, f"serial ended: {serial.reason}"  # type: ignore[attr-defined]
                seen += chunk
            return seen

        async def scenario() -> None:
            await backend.connect()
            serial = await backend.open_serial(vm)
            await backend.resume(vm)
            seen = await read_until(serial, b"second", b"")  # the menu is drawn
            endpoints = await backend.open_console(vm)
            ep = endpoints.graphics
            assert isinstance(ep, VncEndpoint) and ep.fd < 0 and ep.host == "127.0.0.1"
            assert ep.port >= 5900 and ep.tunnel is None
            source = RfbSource(ep)
            await source.start()
            for scancode, keysym in (DOWN, ENTER):
                source.send_key(scancode, keysym, True)
                source.send_key(scancode, keysym, False)
            seen = await read_until(serial, b"VMGUI-GRUB-SECOND", seen)
            assert b"VMGUI-GRUB-FIRST" not in seen
            await source.close()
            await serial.close()
            await backend.force_off(vm)

        qt_loop.run_until_complete(asyncio.wait_for(scenario(), 150))
    finally:
        qt_loop.run_until_complete(backend.close())
        remove_domain(libvirtd_tcp.uri, vm_name)
        shutil.rmtree(shared, ignore_errors=True)
