"""The ssh tunnel with real OpenSSH: our own sshd on loopback, the real ssh client, and QEMU's
VNC server behind it; the frame that comes through `ssh -W` must equal QEMU's screendump.

OpenSSH finds `~/.ssh` through the passwd entry, not $HOME, so the client is pointed at its
key and a private known_hosts by a `ssh` on PATH that only adds `-F config` before execing
the real client (the tunnel's pid is then the real ssh; the test checks that).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.console.rfb.qemu_vnc import QemuVnc, matches_screendump, running_qemu
from tests.support import need, need_tool
from vmgui.console.rfb import RfbSource
from vmgui.model.console import SshTunnel, VncEndpoint

SSHD = "/usr/sbin/sshd"  # sshd refuses to run unless started by its absolute path
START_TIMEOUT_S = 20.0
SSH_EXIT_TIMEOUT_S = 10.0

SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
"""

SSH_CONFIG = """\
Host *
  IdentityFile {dir}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {dir}/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking accept-new
  BatchMode yes
"""


class Sshd(NamedTuple):
    port: int
    client: str  # the real ssh binary behind the wrapper


def free_port(candidates: Iterable[int] = (0,)) -> int:
    """A port on 127.0.0.1 nobody listens on (0: any the kernel picks)."""
    for port in candidates:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return int(s.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


@pytest.fixture
def sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sshd]:
    """Our own sshd on 127.0.0.1, and `ssh` on PATH configured to log into it."""
    need(os.access(SSHD, os.X_OK), "sshd is not installed (./setup.sh test installs it)")
    real_ssh = os.path.realpath(need_tool("ssh"))
    keygen = need_tool("ssh-keygen")
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
                       check=True, capture_output=True)  # fmt: skip
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, dir=tmp_path))
    (tmp_path / "ssh_config").write_text(SSH_CONFIG.format(dir=tmp_path))
    wrapper = tmp_path / "bin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {real_ssh} -F {tmp_path / "ssh_config"} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # root's privilege separation dir
    daemon = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {daemon.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        yield Sshd(port, real_ssh)
    finally:
        daemon.terminate()
        daemon.wait()


@pytest.fixture
def qemu_tcp(tmp_path: Path) -> Iterator[QemuVnc]:
    with running_qemu(tmp_path / "qemu", tcp_port=free_port(range(5900, 6000))) as vm:
        yield vm


def test_frame_through_openssh_equals_screendump(
    sshd: Sshd, qemu_tcp: QemuVnc, tmp_path: Path
) -> None:
    async def body() -> None:
        tunnel = SshTunnel(host="127.0.0.1", user=getpass.getuser(), port=sshd.port)
        source = RfbSource(VncEndpoint(host="127.0.0.1", port=qemu_tcp.tcp_port, tunnel=tunnel))
        await asyncio.wait_for(source.start(), 30)
        assert source.client is not None
        proc = source._conn.ssh if source._conn else None  # the tunnel's process
        assert proc is not None and proc.returncode is None
        assert os.path.realpath(f"/proc/{proc.pid}/exe") == sshd.client
        assert await matches_screendump(lambda: source.client.pixels, qemu_tcp) == ""  # type: ignore[union-attr]
        await source.close()
        await asyncio.wait_for(proc.wait(), SSH_EXIT_TIMEOUT_S)
        assert proc.returncode is not None

    asyncio.run(body())
    assert "127.0.0.1" in (tmp_path / "known_hosts").read_text()  # accepted here, not in ~/.ssh
