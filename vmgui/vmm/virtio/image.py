"""Disk image files: opened without blocking, checked by type, locked the way QEMU locks them.

Formats come from configuration only (QEMU's `format=raw` rule): the content of an image is
guest-writable, so nothing here ever looks inside it. A raw image whose first sector happens to
look like qcow2 is still a raw disk.

Opening never blocks: O_NONBLOCK keeps a FIFO from stalling start-up (and SIGTERM with it), and
anything but a regular file or a block device is refused with one line before it is used.

Locks are QEMU's (block/file-posix.c), so a built-in VM and a QEMU/libvirt VM can never write one
image at once: open file description (OFD) byte-range locks, never flock. For each block-layer
permission bit i the holder takes a shared lock on byte PERM_LOCK_BASE + i when it uses the
permission and on byte SHARED_LOCK_BASE + i when it does not let others use it; then it tests
(F_OFD_GETLK, exclusive) byte SHARED_LOCK_BASE + i for every permission it uses and byte
PERM_LOCK_BASE + i for every permission it does not share. A test that finds another holder
means the image is in use. Closing the fd drops every lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct

from vmgui.vmm.virtio.device import DeviceSetupError

#: QEMU's lock byte offsets (libvirt's own lock uses byte 0).
PERM_LOCK_BASE = 100
SHARED_LOCK_BASE = 200

#: QEMU block-layer permission bits (include/block/block-common.h); BLK_PERM_ALL = 0x0f.
PERM_CONSISTENT_READ = 0x01
PERM_WRITE = 0x02
PERM_WRITE_UNCHANGED = 0x04
PERM_RESIZE = 0x08
PERM_BITS = 4

#: What a guest disk holds, as a QEMU guest device (share-rw=off) does, read-only or not: it
#: reads, writes when read-write, and lets others do anything but write.
UNSHARED_PERMS = PERM_WRITE
READ_ONLY_PERMS = PERM_CONSISTENT_READ
READ_WRITE_PERMS = PERM_CONSISTENT_READ | PERM_WRITE

#: struct flock on Linux/x86-64: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
_FLOCK = struct.Struct("hhqqi4x")

class DiskImageError(DeviceSetupError):
    """A disk image that cannot be attached; the message is one line for the user."""


def open_image(path: str, read_only: bool) -> int:
    """Open, type-check and lock a raw image; DiskImageError explains any refusal."""
    flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DiskImageError(f"disk image {path} does not exist") from None
    except PermissionError:
        hint = "" if read_only else " (attach it read-only with ',ro')"
        raise DiskImageError(f"disk image {path}: permission denied{hint}") from None
    except IsADirectoryError:
        raise DiskImageError(f"disk image {path} is a directory") from None
    except OSError as e:
        raise DiskImageError(f"disk image {path}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DiskImageError(f"disk image {path} is a directory")
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            raise DiskImageError(f"disk image {path} is not a regular file or block device")
        os.set_blocking(fd, True)
        lock_image(fd, path, read_only)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _flock(kind: int, offset: int) -> bytes:
    return _FLOCK.pack(kind, os.SEEK_SET, offset, 1, 0)


def _lock_byte(fd: int, offset: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_RDLCK, offset))


def _held_by_others(fd: int, offset: int) -> bool:
    """Whether another open file description holds a lock on the byte (F_OFD_GETLK test)."""
    got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK, offset))
    return _FLOCK.unpack(got)[0] != fcntl.F_UNLCK


def lock_image(fd: int, path: str, read_only: bool) -> None:
    """Take QEMU's lock bytes for a guest disk on `fd`; DiskImageError if another VM holds it."""
    perms = READ_ONLY_PERMS if read_only else READ_WRITE_PERMS
    unshared = UNSHARED_PERMS
    try:
        for i in range(PERM_BITS):
            if perms >> i & 1:
                _lock_byte(fd, PERM_LOCK_BASE + i)
            if unshared >> i & 1:
                _lock_byte(fd, SHARED_LOCK_BASE + i)
        conflict = any(
            perms >> i & 1 and _held_by_others(fd, SHARED_LOCK_BASE + i)
            or unshared >> i & 1 and _held_by_others(fd, PERM_LOCK_BASE + i)
            for i in range(PERM_BITS)
        )
    except BlockingIOError:  # someone holds a byte exclusively (not QEMU's scheme, still in use)
        conflict = True
    except OSError as e:
        raise DiskImageError(f"disk image {path}: cannot lock it ({e.strerror})") from None
    if conflict:
        unlock_image(fd)
        raise DiskImageError(f"disk image {path} is in use by another VM")


def unlock_image(fd: int) -> None:
    """Drop every lock byte (closing the fd does the same)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, 0, 0, 0))
