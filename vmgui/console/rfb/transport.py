"""The byte stream to a VNC server: a handed-over fd, a unix socket, TCP, or TCP through ssh.

The ssh tunnel is `ssh -W host:port` (OpenSSH's stdio forwarding: no port opened on either
side, no netcat on the remote host) with its stdin/stdout on one end of a socketpair; the
client speaks RFB on the other end as on any socket. ssh asks for passwords or passphrases the
way it always does (agent, SSH_ASKPASS); its last stderr line becomes the sentence when the
tunnel fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field

from vmgui.console.source import ConsoleError
from vmgui.model.console import SshTunnel, VncEndpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0
SSH_STOP_TIMEOUT_S = 3.0
STREAM_LIMIT = 1 << 20  # StreamReader pauses the socket above twice this: small buffers, cheap moves


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ssh: asyncio.subprocess.Process | None = None
    description: str = ""
    _closed: bool = field(default=False, repr=False)

    async def ssh_failure(self) -> str:
        """ssh's own last words when the tunnel died ("" when there is no tunnel or it lives)."""
        proc = self.ssh
        if proc is None or proc.stderr is None:
            return ""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 1.0)
        if proc.returncode is None:
            return ""
        err = (await proc.stderr.read()).decode("utf-8", "replace").strip().splitlines()
        return err[-1] if err else f"ssh exited with status {proc.returncode}"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        proc = self.ssh
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), SSH_STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def describe(ep: VncEndpoint) -> str:
    if ep.fd >= 0:
        return "the VM's display"
    where = ep.path or _host_port(ep.host, ep.port)
    return f"{where} via ssh to {ep.tunnel.host}" if ep.tunnel else where


def ssh_command(tunnel: SshTunnel, host: str, port: int) -> list[str]:
    argv = ["ssh", "-T", "-o", "ExitOnForwardFailure=yes"]
    if tunnel.port:
        argv += ["-p", str(tunnel.port)]
    if tunnel.user:
        argv += ["-l", tunnel.user]
    return [*argv, "-W", _host_port(host, port), "--", tunnel.host]


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_connection(ep: VncEndpoint) -> Connection:
    """Connect to `ep`; ConsoleError with a sentence on failure. The fd's ownership is taken."""
    what = describe(ep)
    try:
        if ep.fd >= 0:
            sock = socket.socket(fileno=ep.fd)
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
            return Connection(reader, writer, description=what)
        if ep.tunnel is not None:
            return await asyncio.wait_for(_open_tunnel(ep, what), CONNECT_TIMEOUT_S)
        if ep.path:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(ep.path, limit=STREAM_LIMIT), CONNECT_TIMEOUT_S
            )
            return Connection(reader, writer, description=what)
        if not ep.host or not 0 < ep.port < 65536:
            raise ConsoleError("The VNC endpoint has no usable address.")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ep.host, ep.port, limit=STREAM_LIMIT), CONNECT_TIMEOUT_S
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(reader, writer, description=what)
    except TimeoutError:
        raise ConsoleError(f"Connecting to the VNC server at {what} timed out.") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConsoleError(f"Cannot connect to the VNC server at {what}: {reason}.") from None


async def _open_tunnel(ep: VncEndpoint, what: str) -> Connection:
    assert ep.tunnel is not None
    if ep.path:
        raise ConsoleError(
            f"The VNC server listens on a unix socket on {ep.tunnel.host}, which ssh's "
            "stdio forwarding cannot reach; configure the VM's display to listen on an address."
        )
    ours, theirs = socket.socketpair()
    try:
        proc = await asyncio.create_subprocess_exec(
            *ssh_command(ep.tunnel, ep.host, ep.port),
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # no terminal: ssh asks through SSH_ASKPASS if at all
        )
    except OSError as exc:
        ours.close()
        raise ConsoleError(f"Cannot start ssh to reach {what}: {exc.strerror or exc}.") from None
    finally:
        theirs.close()
    ours.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=ours, limit=STREAM_LIMIT)
    return Connection(reader, writer, ssh=proc, description=what)
