"""The ssh tunnel plumbing with a stand-in `ssh` on PATH (no sshd here): the argv we build,
bytes both ways through `-W host:port`, and ssh's own last words when it fails."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.console.rfb.fake_server import FakeServer, raw_rect, update
from vmgui.console.rfb import RfbSource
from vmgui.console.rfb.transport import ssh_command
from vmgui.console.source import ConsoleError
from vmgui.model.console import SshTunnel, VncEndpoint

FAKE_SSH = """#!{python}
# Stand-in for OpenSSH: record argv, then behave like `ssh -W host:port` (or fail like ssh).
import os, socket, sys, threading
open(os.environ["FAKE_SSH_LOG"], "w").write("\\n".join(sys.argv[1:]))
target = sys.argv[sys.argv.index("-W") + 1]
if sys.argv[-1] == "nowhere.invalid":
    sys.stderr.write("ssh: Could not resolve hostname nowhere.invalid: Name or service not known\\n")
    sys.exit(255)
host, port = target.rsplit(":", 1)
s = socket.create_connection((host, int(port)))
def up():
    while data := os.read(0, 65536):
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := s.recv(65536):
    os.write(1, data)
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "ssh"
    script.parent.mkdir()
    script.write_text(FAKE_SSH.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "argv"
    monkeypatch.setenv("FAKE_SSH_LOG", str(log))
    return log


def test_ssh_command_uses_the_connections_user_host_and_port() -> None:
    argv = ssh_command(SshTunnel("far.example", "ann", 2222), "127.0.0.1", 5901)
    assert argv[0] == "ssh" and argv[-2:] == ["--", "far.example"]
    assert argv[argv.index("-p") : argv.index("-p") + 2] == ["-p", "2222"]
    assert argv[argv.index("-l") : argv.index("-l") + 2] == ["-l", "ann"]
    assert argv[argv.index("-W") : argv.index("-W") + 2] == ["-W", "127.0.0.1:5901"]
    assert "-W" in ssh_command(SshTunnel("h"), "::1", 5900) and "[::1]:5900" in ssh_command(
        SshTunnel("h"), "::1", 5900
    )


def test_frames_come_through_the_tunnel(fake_ssh: Path) -> None:
    frame = np.arange(64 * 48, dtype=np.uint32).reshape(48, 64)

    async def body() -> None:
        fake = FakeServer()
        served = asyncio.Event()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            fake.attach(reader, writer)
            await fake.handshake(64, 48)
            fake.send(update(raw_rect(0, 0, frame)))
            served.set()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        source = RfbSource(
            VncEndpoint(host="127.0.0.1", port=port, tunnel=SshTunnel("far.example", "ann"))
        )
        await asyncio.wait_for(source.start(), 20)
        assert source.client is not None and (source.client.pixels == frame).all()
        await source.close()
        await fake.close()
        server.close()

    asyncio.run(body())
    argv = fake_ssh.read_text().splitlines()
    assert argv[-1] == "far.example" and "ann" in argv


def test_ssh_failure_is_ssh_own_sentence(fake_ssh: Path) -> None:
    async def body() -> None:
        source = RfbSource(VncEndpoint(host="127.0.0.1", port=5900, tunnel=SshTunnel("nowhere.invalid")))
        with pytest.raises(ConsoleError) as exc:
            await asyncio.wait_for(source.start(), 20)
        assert "ssh tunnel" in str(exc.value) and "Could not resolve hostname" in str(exc.value)
        assert "\n" not in str(exc.value)

    asyncio.run(body())
