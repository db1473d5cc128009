"""Where a libvirt VM's consoles are: its VNC display and its serial console.

Graphics: on a local connection (a unix socket: qemu:///system, qemu+unix://...) libvirt hands
us an already connected socket to QEMU's VNC server with `virDomainOpenGraphicsFD`, as
virt-manager does: no TCP port, no password. Otherwise the live XML says where the display
listens; for qemu+ssh:// that address is reached through `ssh -W` with the connection's own
user, host and port (the console layer runs the tunnel). A VM without VNC (none, or SPICE only)
gets `graphics=None` and one sentence.

Serial: `virDomainOpenConsole` on a non-blocking `virStream` whose readiness callbacks come from
libvirt's event loop (eventloop.py: Qt's GLib loop in the app, a small pump under plain
asyncio); reads are coalesced, writes queued until the stream is writable, and EOF, hang-up and
errors end the stream with a sentence. Nothing here blocks the loop: opening and closing the
stream are RPCs and run in the connection's executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import libvirt

from vmgui.backends.base import BackendError
from vmgui.model.console import ConsoleEndpoints, SshTunnel, VncEndpoint

log = logging.getLogger(__name__)

T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]  # the backend's `call(action, vm_name, fn, *args)`

#: One read callback takes at most this much, then yields to the loop.
SERIAL_READ_CHUNK = 64 * 1024
SERIAL_MAX_READS_PER_EVENT = 16
#: Output not yet written to the guest beyond this is refused (a stuck guest, a paste flood).
SERIAL_MAX_PENDING = 1 << 20

_LOCAL_TRANSPORTS = ("", "unix")
_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class VncListen:
    index: int  # position among the domain's <graphics> elements (virDomainOpenGraphicsFD)
    address: str
    port: int
    socket: str
    password: str | None


@dataclass(frozen=True)
class DisplayInfo:
    vnc: VncListen | None
    kinds: tuple[str, ...]  # every <graphics type>, e.g. ("spice",)
    has_serial: bool


def display_info(xml: str) -> DisplayInfo:
    """What the live domain XML says about graphics and serial devices."""
    root = ET.fromstring(xml)
    graphics = root.findall("./devices/graphics")
    vnc = None
    for index, g in enumerate(graphics):
        if g.get("type") != "vnc" or vnc is not None:
            continue
        address, sock = g.get("listen", ""), g.get("socket", "")
        for listen in g.findall("listen"):
            if listen.get("type") == "socket" and listen.get("socket"):
                sock = listen.get("socket", "")
            elif listen.get("type") in ("address", "network") and listen.get("address"):
                address = listen.get("address", "")
        try:
            port = int(g.get("port", "-1"))
        except ValueError:
            port = -1
        vnc = VncListen(index, address, port, sock, g.get("passwd"))
    serial = any(
        d.get("type") == "pty" for d in root.findall("./devices/serial") + root.findall(
            "./devices/console"
        )
    )
    return DisplayInfo(vnc, tuple(g.get("type", "") for g in graphics), serial)


def _connection_place(uri: str) -> tuple[str, str, str, int]:
    """(transport, host, user, port) of a libvirt URI; host "" for a local connection."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    try:
        port = parts.port or 0
    except ValueError:
        port = 0
    return transport, parts.hostname or "", parts.username or "", port


def over_unix_socket(uri: str) -> bool:
    """The connection is a local unix socket, the only transport that can pass file descriptors
    (virDomainOpenGraphicsFD). Not `is_local_uri`: qemu+tcp://localhost is local, but no fd
    crosses TCP."""
    transport, host, _user, _port = _connection_place(uri)
    return transport in _LOCAL_TRANSPORTS and not host


def vnc_endpoint(uri: str, listen: VncListen, vm_name: str) -> VncEndpoint:
    """The address to reach `listen` from this machine (through ssh for qemu+ssh://)."""
    transport, host, user, port = _connection_place(uri)
    tunnel = SshTunnel(host=host, user=user, port=port) if transport == "ssh" and host else None
    if listen.socket:
        if host and tunnel is None:
            raise BackendError(
                f"The display of {vm_name!r} listens on a unix socket on {host}, "
                "which only a local or qemu+ssh:// connection can reach."
            )
        return VncEndpoint(path=listen.socket, password=listen.password, tunnel=tunnel,
                           local=not host)  # fmt: skip
    if listen.port <= 0:
        raise BackendError(f"The VNC display of {vm_name!r} has no port yet.")
    address = listen.address.strip("[]")
    if tunnel is not None:
        target = "127.0.0.1" if address in _ANY_ADDRESS else address
    elif address in _ANY_ADDRESS:
        target = host or "127.0.0.1"
    elif address in _LOOPBACK and host and host not in _LOOPBACK:
        raise BackendError(
            f"The display of {vm_name!r} listens only on {host}'s own loopback address; "
            "connect with qemu+ssh:// to reach it."
        )
    else:
        target = address
    return VncEndpoint(host=target, port=listen.port, password=listen.password, tunnel=tunnel,
                       local=not host or (tunnel is None and target in _LOOPBACK))  # fmt: skip


def _live_xml(dom: libvirt.virDomain) -> str:
    try:  # with the password, when the connection may read it
        return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
    except libvirt.libvirtError:
        return str(dom.XMLDesc(0))


def console_endpoints_blocking(conn: libvirt.virConnect, uri: str, vm_id: str) -> ConsoleEndpoints:
    """Run in the connection's executor: RPCs, and maybe a file descriptor from the daemon."""
    dom = conn.lookupByUUIDString(vm_id)
    name = dom.name()
    if not dom.isActive():
        raise BackendError(f"{name!r} is not running, so it has no screen to show.")
    info = display_info(_live_xml(dom))
    if info.vnc is None:
        if "spice" in info.kinds:
            problem = f"The display of {name!r} is SPICE only; vmgui shows VNC displays."
        else:
            problem = f"{name!r} has no graphical display."
        return ConsoleEndpoints(vm_id, None, info.has_serial, problem)
    if over_unix_socket(uri):
        try:
            fd = dom.openGraphicsFD(info.vnc.index, libvirt.VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
            return ConsoleEndpoints(vm_id, VncEndpoint(fd=fd, local=True), info.has_serial)
        except libvirt.libvirtError as exc:
            log.info("virDomainOpenGraphicsFD failed for %s (%s); using the address", name, exc)
    try:
        endpoint = vnc_endpoint(uri, info.vnc, name)
    except BackendError as exc:
        return ConsoleEndpoints(vm_id, None, info.has_serial, str(exc))
    return ConsoleEndpoints(vm_id, endpoint, info.has_serial)


# --- serial console --------------------------------------------------------------------------

_READ_EVENTS = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)


class SerialStream:
    """A `ByteStream` over a non-blocking libvirt console stream.

    `read()` returns b"" once the stream ended; `reason` then says why (one sentence).
    """

    def __init__(
        self, stream: libvirt.virStream, vm_name: str, close_call: Callable[[], Awaitable[None]]
    ) -> None:
        self._stream = stream
        self._vm_name = vm_name
        self._close_call = close_call
        self._loop = asyncio.get_running_loop()
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._pending = bytearray()
        self._ended = False
        self._watching_writes = False
        self.reason = ""
        stream.eventAddCallback(_READ_EVENTS, self._on_event, None)

    # libvirt's event loop calls this (the loop's thread in practice; marshalled regardless)
    def _on_event(self, _stream: libvirt.virStream, events: int, _opaque: object) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._handle, events)

    def _handle(self, events: int) -> None:
        if self._ended:
            return
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            self._drain_readable()
        if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
            self._flush()
        if not self._ended and events & libvirt.VIR_STREAM_EVENT_HANGUP:
            self._end(f"The serial console of {self._vm_name!r} hung up.")
        elif not self._ended and events & libvirt.VIR_STREAM_EVENT_ERROR:
            self._end(f"The serial console of {self._vm_name!r} failed.")

    def _drain_readable(self) -> None:
        for _ in range(SERIAL_MAX_READS_PER_EVENT):
            try:
                data = self._stream.recv(SERIAL_READ_CHUNK)
            except libvirt.libvirtError as exc:
                log.info("console stream of %s: %s", self._vm_name, exc)
                self._end(f"The serial console of {self._vm_name!r} failed.")
                return
            if data == -2:  # EAGAIN
                return
            if not data:
                self._end(f"The serial console of {self._vm_name!r} ended (the VM stopped).")
                return
            self._chunks.put_nowait(bytes(data))

    def _flush(self) -> None:
        while self._pending and not self._ended:
            try:
                sent = self._stream.send(bytes(self._pending[:SERIAL_READ_CHUNK]))
            except libvirt.libvirtError as exc:
                log.info("console stream of %s: %s", self._vm_name, exc)
                self._end(f"The serial console of {self._vm_name!r} failed.")
                return
            if sent == -2:
                break
            del self._pending[:sent]
        want = bool(self._pending) and not self._ended
        if want != self._watching_writes and not self._ended:
            events = _READ_EVENTS | (libvirt.VIR_STREAM_EVENT_WRITABLE if want else 0)
            with contextlib.suppress(libvirt.libvirtError):
                self._stream.eventUpdateCallback(events)
                self._watching_writes = want

    def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.reason = reason
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.eventRemoveCallback()
        self._chunks.put_nowait(b"")

    async def read(self) -> bytes:
        if self._ended and self._chunks.empty():
            return b""
        return await self._chunks.get()

    async def write(self, data: bytes) -> None:
        if self._ended:
            raise BackendError(self.reason or "The serial console is closed.")
        if len(self._pending) + len(data) > SERIAL_MAX_PENDING:
            raise BackendError(f"The serial console of {self._vm_name!r} is not taking input.")
        self._pending += data
        self._flush()

    async def close(self) -> None:
        if not self._ended:
            self._end("")
        with contextlib.suppress(Exception):
            await self._close_call()


async def open_serial(conn: libvirt.virConnect, vm_id: str, vm_name: str, call: Call) -> SerialStream:
    """Open the VM's first console/serial port (taking it over from another viewer)."""

    def open_blocking() -> libvirt.virStream:
        dom = conn.lookupByUUIDString(vm_id)
        if not dom.isActive():
            raise BackendError(f"{dom.name()!r} is not running, so its serial console is silent.")
        if not display_info(dom.XMLDesc(0)).has_serial:
            raise BackendError(f"{dom.name()!r} has no serial console.")
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        return stream

    stream = await call("open the serial console of", vm_name, open_blocking)

    async def close_stream() -> None:
        def abort() -> None:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()

        await asyncio.get_running_loop().run_in_executor(None, abort)

    try:
        return SerialStream(stream, vm_name, close_stream)
    except libvirt.libvirtError as exc:  # no event loop to watch the stream with
        log.warning("cannot watch the console stream of %s: %s", vm_name, exc)
        await close_stream()
        raise BackendError(f"The serial console of {vm_name!r} cannot be followed here.") from None
