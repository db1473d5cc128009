"""Start and find `vmgui-vmm` processes, one per running VM, that outlive the GUI.

Each VM's process runs in its own session (no controlling terminal, stdin from /dev/null), so
closing the GUI or its terminal leaves it running. Next to its control socket lives a pid file
`<uuid>.pid` ("PID START-TICKS"): the start time in clock ticks since boot tells a recycled pid
from our VMM, and the process's command line must name the VM's control socket, so the backend
never signals or adopts a process that is not that VM's VMM.

Runtime files double as evidence after the GUI was closed: the VMM removes its control socket
when it ends in order, so a pid file whose process is gone but whose socket is still there means
the VMM was killed (crashed); the log's last lines say why.

All functions here block (file system, /proc): call them from an executor.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vmgui.backends.base import BackendError
from vmgui.backends.builtin import paths
from vmgui.backends.builtin.definitions import Definition

log = logging.getLogger(__name__)

#: How much of a VMM log is read to find its last lines (logs are appended forever).
LOG_TAIL_BYTES = 8192
LOG_TAIL_LINES = 5
#: A VMM log beyond this is moved to `<uuid>.log.1` at the next start (one old log is kept).
MAX_LOG_BYTES = 4 << 20
#: Marker the backend writes into the log before each start, so a tail never mixes runs.
RUN_MARKER = "---- vmgui: starting "


@dataclass(frozen=True)
class RuntimeFiles:
    """The per-VM files in the runtime and state directories."""

    qmp: str
    serial: str
    pid: Path
    log: Path
    #: Guest serial output as a file (the console itself when the VMM has no `--serial unix:`).
    serial_file: Path

    @property
    def old_log(self) -> Path:
        """Where a long log is moved at the next start."""
        return self.log.with_name(self.log.name + ".1")

    @classmethod
    def for_vm(cls, vm_id: str) -> RuntimeFiles:
        run = paths.runtime_dir()
        key = vm_id.replace("-", "")
        return cls(
            qmp=paths.socket_path(run, f"{key}.qmp"),
            serial=paths.socket_path(run, f"{key}.serial"),
            pid=run / f"{key}.pid",
            log=paths.logs_dir() / f"{vm_id}.log",
            serial_file=paths.logs_dir() / f"{vm_id}.serial",
        )


@cache
def vmm_options() -> frozenset[str]:
    """The `vmgui-vmm run` options this installation knows (some arrive in later versions)."""
    from vmgui.vmm.cli import build_parser  # only to learn the options

    parser = build_parser()
    sub: Any = next(a for a in parser._actions if a.dest == "command")
    run: argparse.ArgumentParser = sub.choices["run"]
    return frozenset(s for a in run._actions for s in a.option_strings)


def serial_supports_unix() -> bool:
    from vmgui.vmm.config import SerialSink
    from vmgui.vmm.errors import VmmError

    try:
        SerialSink.parse("unix:/x")
    except VmmError:
        return False
    return True


def vmm_argv(d: Definition, files: RuntimeFiles) -> list[str]:
    """The command line that runs this VM (raises BackendError when this VMM cannot)."""
    options = vmm_options()
    argv = [sys.executable, "-m", "vmgui.vmm", "run"]
    if d.kernel:
        argv += ["--kernel", d.kernel]
        if d.initrd:
            argv += ["--initrd", d.initrd]
        if d.cmdline:
            argv += ["--cmdline", d.cmdline]
    else:
        if "--firmware" not in options:
            raise BackendError(
                "This version of the built-in VMM cannot boot ISO or disk images yet "
                "(it has no firmware support); boot a Linux kernel instead."
            )
        argv += ["--firmware", d.firmware or "seabios"]
    if d.iso:
        argv += ["--disk", f"{d.iso},ro"]
    for disk in d.disks:
        argv += ["--disk", f"{disk.path},ro" if disk.readonly else disk.path]
    w, h = d.framebuffer
    argv += [
        "--memory", f"{d.memory_mib}M",
        "--cpus", str(d.vcpus),
        "--framebuffer", f"{w}x{h}",
        "--qmp", files.qmp,
        "--on-reboot", "restart",
        "--net", d.network if d.network in ("none", "passt") else "none",
        "--serial", f"file:{files.serial_file}",  # kept after the VM ends (capped by the VMM)
    ]
    if serial_supports_unix():
        argv += ["--serial", f"unix:{files.serial}"]
    if "--log" in options:
        argv += ["--log", str(files.log)]
    return argv


# --- disks --------------------------------------------------------------------------------------


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def disk_users(path: str, others: list[Definition]) -> list[Definition]:
    """The other VMs whose definitions write to `path` (read-only sharing is fine)."""
    return [o for o in others for d in o.disks if not d.readonly and _same_file(d.path, path)]


def disk_locked(path: str, read_only: bool) -> bool:
    """True when another process holds the image's lock (the VMM's own QEMU-style OFD lock
    bytes, so QEMU and libvirt VMs count too); probing takes and drops the lock at once."""
    from vmgui.vmm.virtio.image import DiskImageError, lock_image

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False  # missing or unreadable: the start check reports it
    try:
        lock_image(fd, path, read_only)
    except DiskImageError as exc:
        return "in use" in str(exc)
    finally:
        os.close(fd)  # drops our probe's lock bytes
    return False


def check_files(d: Definition) -> None:
    """Every file the VM reads or writes exists and is usable; BackendError names the first."""
    wanted = [("kernel", d.kernel), ("initrd", d.initrd), ("ISO image", d.iso)]
    wanted += [("disk image", disk.path) for disk in d.disks]
    for what, path in wanted:
        if not path:
            continue
        if not os.path.isfile(path):
            raise BackendError(f"The {what} {path} of “{d.name}” does not exist.")
        if not os.access(path, os.R_OK):
            raise BackendError(f"The {what} {path} of “{d.name}” cannot be read.")
    for disk in d.disks:
        if not disk.readonly and not os.access(disk.path, os.W_OK):
            raise BackendError(f"The disk image {disk.path} of “{d.name}” is not writable.")


def create_disk(path: str, size_bytes: int) -> None:
    """A new sparse raw image; refuses to overwrite anything."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise BackendError(f"The file {path} already exists; choose another file name.") from None
    except OSError as exc:
        raise BackendError(f"Cannot create the disk image {path}: {exc.strerror or exc}.") from None
    try:
        os.ftruncate(fd, size_bytes)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise BackendError(f"Cannot create the disk image {path}: {exc.strerror or exc}.") from None
    os.close(fd)


# --- processes ----------------------------------------------------------------------------------


def _start_ticks(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces and parentheses.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_our_vmm(pid: int, files: RuntimeFiles, start_ticks: int | None = None) -> bool:
    """The process `pid` is alive and is the vmgui-vmm serving this VM's control socket."""
    if pid <= 0:
        return False
    ticks = _start_ticks(pid)
    if ticks is None or (start_ticks is not None and ticks != start_ticks):
        return False
    argv = _cmdline(pid)
    is_vmm = any(a.endswith("vmgui-vmm") for a in argv[:2]) or "vmgui.vmm" in argv[:3]
    return is_vmm and "run" in argv and files.qmp in argv


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int | None


def read_pid(files: RuntimeFiles) -> PidRecord | None:
    try:
        parts = files.pid.read_text().split()
        return PidRecord(int(parts[0]), int(parts[1]) if len(parts) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def clear_runtime(files: RuntimeFiles) -> None:
    for p in (files.pid, Path(files.qmp), Path(files.serial)):
        with contextlib.suppress(OSError):
            p.unlink()


def launch(d: Definition, files: RuntimeFiles) -> subprocess.Popen[bytes]:
    """Start the VM's VMM detached from us; raises BackendError when it cannot be started."""
    argv = vmm_argv(d, files)
    clear_runtime(files)
    with contextlib.suppress(OSError):
        files.serial_file.unlink()  # a fresh console per run
    try:
        files.log.parent.mkdir(parents=True, exist_ok=True)
        if files.log.exists() and files.log.stat().st_size > MAX_LOG_BYTES:
            os.replace(files.log, files.old_log)
        log_fd = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise BackendError(f"Cannot open the VM's log {files.log}: {exc.strerror or exc}.") from None
    try:
        os.write(log_fd, f"{RUN_MARKER}{d.name}\n".encode())
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    except OSError as exc:
        raise BackendError(f"Cannot start the built-in VMM: {exc.strerror or exc}.") from None
    finally:
        os.close(log_fd)
    # Reap it whenever it ends, even after the backend that started it was closed: a VMM
    # outliving its backend must not linger as a zombie until the app exits.
    threading.Thread(target=proc.wait, name=f"reap-vmm-{proc.pid}", daemon=True).start()
    ticks = _start_ticks(proc.pid)
    try:
        files.pid.write_text(f"{proc.pid} {ticks if ticks is not None else ''}\n")
    except OSError as exc:
        log.warning("cannot write %s: %s", files.pid, exc)
    return proc


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the VM's most recent run, as the user should see them."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            raw = f.read()
    except OSError:
        return ""
    text = raw.decode("utf-8", errors="replace")
    marker = text.rfind(RUN_MARKER)
    if marker >= 0:
        text = text[marker:].split("\n", 1)[1] if "\n" in text[marker:] else ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def error_line(tail: str) -> str:
    """The VMM's own one-line reason for failing ("vmgui-vmm: ..." on its stderr), or ""."""
    for line in reversed(tail.splitlines()):
        if line.startswith("vmgui-vmm: "):
            return line.removeprefix("vmgui-vmm: ")
    return ""
