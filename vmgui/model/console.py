"""Where a VM's consoles are, as plain data (no Qt, no libvirt, no sockets opened here).

`Backend.open_console(vm_id)` returns a `ConsoleEndpoints`; `vmgui.console.open_source()` turns
its `graphics` member into a live framebuffer source, and `Backend.open_serial(vm_id)` gives the
serial byte stream. Keeping endpoints as data lets one console widget serve every backend: the
widget never learns whether pixels come from a shared memfd or from a VNC server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SharedFramebufferEndpoint:
    """Built-in VMM: its QMP socket hands over the framebuffer memfd (`x-vmgui-framebuffer`)."""

    qmp_socket: str


@dataclass(frozen=True)
class SshTunnel:
    """Reach `VncEndpoint.host:port` (or `.path`) from the far side of `ssh [-p port] user@host`."""

    host: str
    user: str = ""
    port: int = 0  # 0: ssh's default


@dataclass(frozen=True)
class VncEndpoint:
    """A VNC (RFB) server: exactly one of `fd`, `path`, or `host` + `port` is set.

    `fd` is an already connected socket (libvirt's virDomainOpenGraphicsFD) whose ownership
    passes to whoever opens the source; `tunnel` says the address is only reachable over ssh.
    """

    fd: int = -1
    path: str = ""
    host: str = ""
    port: int = 0
    password: str | None = None  # None: not known; the client asks when the server wants one
    tunnel: SshTunnel | None = None
    local: bool = False  # same machine: the client puts Raw first in its encoding list


GraphicsEndpoint = SharedFramebufferEndpoint | VncEndpoint


@dataclass(frozen=True)
class ConsoleEndpoints:
    """A VM's consoles; `graphics` is None when it has none, and `problem` says why."""

    vm_id: str
    graphics: GraphicsEndpoint | None = None
    has_serial: bool = False
    problem: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class ByteStream(Protocol):
    """A serial console: bytes both ways, `read()` returns b"" once the other side hung up."""

    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...
