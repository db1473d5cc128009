"""First start: the local libvirt that answers is the one to connect to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.fixtures.libvirtd import PrivateLibvirtd
from tests.support import need, without_permission_override
from vmgui.backends.libvirt.discovery import (
    SESSION_URI,
    SYSTEM_URI,
    Reach,
    local_libvirt_uri,
    reach,
)


def _stale_socket(path: Path) -> Path:
    """A socket file nobody listens on (a daemon that died)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    return path


def test_a_listening_system_daemon_means_qemu_system(libvirtd: PrivateLibvirtd) -> None:
    assert local_libvirt_uri([str(libvirtd.socket_path)], runtime_dir="/nonexistent") == SYSTEM_URI


def test_a_session_daemon_alone_means_qemu_session(
    libvirtd: PrivateLibvirtd, tmp_path: Path
) -> None:
    stale = _stale_socket(tmp_path / "stale-sock")
    assert reach(str(stale)) is Reach.ABSENT
    # the private daemon's runtime dir holds libvirt/libvirt-sock, as a session daemon's does
    uri = local_libvirt_uri([str(stale)], runtime_dir=str(libvirtd.runtime))
    assert uri == SESSION_URI


def test_no_local_libvirt_means_nothing(tmp_path: Path) -> None:
    stale = _stale_socket(tmp_path / "stale-sock")
    assert local_libvirt_uri([str(stale), "/nonexistent/sock"], runtime_dir=str(tmp_path)) == ""


def test_a_system_daemon_closed_to_this_user_means_qemu_session(tmp_path: Path) -> None:
    """virt-manager's choice for a user without access: the session daemon (started on demand)."""
    need(os.geteuid() == 0, "giving the socket to another user needs root")
    path = tmp_path / "system-sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    os.chown(path, 65534, 65534)
    path.chmod(0o600)  # nobody's: root without DAC override may not connect
    code = ("from vmgui.backends.libvirt.discovery import local_libvirt_uri; "
            f"print(local_libvirt_uri([{str(path)!r}], runtime_dir='/nonexistent'))")
    try:
        out = subprocess.run([*without_permission_override(), sys.executable, "-c", code],
                             capture_output=True, text=True, timeout=60, check=True,
                             cwd=Path(__file__).resolve().parents[3])
    finally:
        server.close()
    assert out.stdout.strip() == SESSION_URI
