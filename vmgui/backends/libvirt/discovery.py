"""Which local libvirt a first start should connect to, as virt-manager does on its first run.

qemu:///system when its daemon's socket answers and this user may use it; qemu:///session when
the system daemon is there but closed to this user (libvirt starts a session daemon on demand),
or when only a session daemon runs; "" when no local libvirt is reachable. Blocking (socket
connects of at most SOCKET_TIMEOUT_S each): call it on an executor.
"""

from __future__ import annotations

import contextlib
import enum
import os
import socket
from collections.abc import Sequence
from pathlib import Path

#: Modular daemons (virtqemud) first, then the monolithic libvirtd.
SYSTEM_SOCKETS = ("/run/libvirt/virtqemud-sock", "/run/libvirt/libvirt-sock")
SESSION_SOCKET_NAMES = ("virtqemud-sock", "libvirt-sock")
SOCKET_TIMEOUT_S = 1.0
SYSTEM_URI = "qemu:///system"
SESSION_URI = "qemu:///session"


class Reach(enum.Enum):
    ANSWERS = "answers"
    REFUSED_TO_USER = "permission denied"
    ABSENT = "absent"


def reach(path: str) -> Reach:
    """Does a daemon listen on the unix socket `path`, and may this user talk to it?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(SOCKET_TIMEOUT_S)
        try:
            s.connect(path)
        except PermissionError:
            return Reach.REFUSED_TO_USER
        except OSError:
            return Reach.ABSENT  # no file, or a stale socket nobody listens on
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
    return Reach.ANSWERS


def session_sockets(runtime_dir: str | None = None) -> list[str]:
    runtime = runtime_dir or os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return [str(Path(runtime) / "libvirt" / name) for name in SESSION_SOCKET_NAMES]


def local_libvirt_uri(
    system_sockets: Sequence[str] = SYSTEM_SOCKETS, runtime_dir: str | None = None
) -> str:
    """The URI a first start adds and connects without asking, or "" when there is none."""
    refused = False
    for path in system_sockets:
        found = reach(path)
        if found is Reach.ANSWERS:
            return SYSTEM_URI
        refused = refused or found is Reach.REFUSED_TO_USER
    if refused:
        return SESSION_URI
    if any(reach(path) is Reach.ANSWERS for path in session_sockets(runtime_dir)):
        return SESSION_URI
    return ""
