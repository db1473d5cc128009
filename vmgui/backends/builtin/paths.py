"""Where the built-in backend keeps things (platformdirs, resolved at call time for tests).

- definitions: user data dir, `vms/<uuid>.json` (they must survive reboots);
- VMM logs: user state dir, `vms/<uuid>.log` (the crash reason is read from there);
- control sockets, serial sockets and pid files: `$XDG_RUNTIME_DIR/vmgui/` (per login session,
  private to the user); without XDG_RUNTIME_DIR a private 0700 directory in the temp dir.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import platformdirs

from vmgui.backends.base import BackendError

APP_NAME = "vmgui"
#: sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def definitions_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "vms"


def images_dir() -> Path:
    """Where the New VM wizard proposes new disk images."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "images"


def logs_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "vms"


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


def _private_dir(path: Path) -> Path:
    """Create `path` 0700, or accept it only when it is ours, a real directory and private."""
    try:
        path.mkdir(mode=0o700, parents=False, exist_ok=True)
        st = path.lstat()
    except OSError as exc:
        raise BackendError(f"Cannot create the folder {path}: {exc.strerror or exc}.") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise BackendError(
            f"The folder {path} is not a private folder of this user; remove it and try again."
        )
    return path


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if base and os.path.isdir(base):
        return _private_dir(Path(base) / APP_NAME)
    return _private_dir(Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}")


def socket_path(directory: Path, name: str) -> str:
    path = str(directory / name)
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise BackendError(
            f"The runtime folder {directory} has too long a path for a control socket."
        )
    return path
