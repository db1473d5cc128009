"""Listening Unix sockets for the VMM's endpoints (QMP, serial): mode 0600, atomic creation.

Kept apart from the QMP wire code so the serial endpoint can use it without importing json or
asyncio (start-up time).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat


def _private_dir(directory: str) -> str:
    """tempfile.mkdtemp(prefix=".sock-", dir=directory) without importing tempfile (it pulls in
    shutil and random: ~3 ms of a start-up)."""
    for _ in range(100):
        name = os.path.join(directory, f".sock-{os.urandom(6).hex()}")
        try:
            os.mkdir(name, 0o700)
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, "no free temporary directory name", directory)


def bind_unix_socket(path: str, what: str = "QMP") -> socket.socket:
    """A non-blocking listening Unix socket at `path`, mode 0600 from the moment it appears.

    Binds inside a private temporary directory, fixes the mode, then renames into place, so no
    other user ever sees a wider mode and a stale socket (its VMM gone) is replaced atomically.
    A socket someone still listens on, or any non-socket file, is left alone and refused.
    `what` names the endpoint in error messages ("QMP", "serial").
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError(f"{what} socket directory {directory} does not exist")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(f"{what} socket path {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            pass  # stale: nobody listens; replaced below
        else:
            raise OSError(f"{what} socket {path} is in use by another running VMM")
        finally:
            probe.close()
    private = _private_dir(directory)
    tmp = os.path.join(private, "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(tmp)
        os.chmod(tmp, 0o600)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
        os.rename(tmp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(private)
    return sock


def unlink_if_same(path: str, inode: tuple[int, int] | None) -> None:
    """Remove the socket file at `path` if it is still the one we created (dev, ino)."""
    if inode is None:
        return
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == inode:
            os.unlink(path)


def inode_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino
