"""The "Demo Linux" boot source: Debian's kernel and a busybox initramfs, prepared locally.

`prepare_demo_linux(progress, cancel)` resolves Debian's cloud kernel package (the smallest
Debian kernel; `linux-image-amd64` when there is no cloud flavour) and `busybox-static` with
apt's own package lists, fetches them with `apt-get download` into the user's cache, unpacks
them with `dpkg-deb -x` and writes an initramfs (a newc cpio archive written here) whose /init
mounts /proc, /sys and /dev and starts a busybox shell on the serial console. Nothing is
installed on the system. Without a Debian package source it says so in one sentence.

A stock kernel needs hardware-assisted guest ring 0: offer this only where the host probe
says so (on an emulated host the GRUB demo is the one that boots).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmgui.backends.base import BackendError
from vmgui.backends.builtin import paths
from vmgui.model import VmConfig

log = logging.getLogger(__name__)

KERNEL_METAPACKAGES = ("linux-image-cloud-amd64", "linux-image-amd64")
BUSYBOX_PACKAGE = "busybox-static"
DEMO_LINUX_VERSION = 1
DEMO_LINUX_MEMORY_MIB = 256
CMDLINE = "console=ttyS0 rdinit=/init quiet"
STEP_TIMEOUT_S = 600.0

INIT_SCRIPT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo
echo "Hello from vmgui's Demo Linux: Debian's kernel and busybox, prepared on this computer."
echo "Type commands; 'poweroff -f' ends the VM."
exec setsid cttyhack sh
"""

Progress = Callable[[int, str], None]  # percent 0..100, what is happening


@dataclass(frozen=True)
class DemoLinux:
    kernel: Path
    initrd: Path


def demo_linux_dir() -> Path:
    return paths.cache_dir() / f"demo-linux-v{DEMO_LINUX_VERSION}"


def cached() -> DemoLinux | None:
    d = demo_linux_dir()
    found = DemoLinux(d / "vmlinuz", d / "initramfs.cpio")
    return found if found.kernel.is_file() and found.initrd.is_file() else None


def _run(argv: list[str], cancel: threading.Event | None, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> str:
    """Run a tool to completion (killed on cancel); its output, or BackendError."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=cwd, env=env)
    except OSError as exc:
        raise BackendError(f"Cannot run {argv[0]}: {exc.strerror or exc}.") from None
    waited = 0.0
    while True:
        if cancel is not None and cancel.is_set():
            proc.kill()
            proc.communicate()
            raise BackendError("Preparing the Linux demo was cancelled.")
        try:
            out, _ = proc.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            waited += 0.1
            if waited > STEP_TIMEOUT_S:
                proc.kill()
                proc.communicate()
                raise BackendError(f"{argv[0]} took too long.") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        log.warning("%s failed (%s): %s", argv, proc.returncode, text)
        last = (text.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"{' '.join(argv[:2])} failed: {last}")
    return text


def resolve_kernel_package(cancel: threading.Event | None = None) -> str:
    """The versioned kernel package behind Debian's metapackage, from apt's package lists."""
    for meta in KERNEL_METAPACKAGES:
        try:
            out = _run(["apt-cache", "depends", meta], cancel)
        except BackendError:
            if cancel is not None and cancel.is_set():
                raise
            continue
        for line in out.splitlines():
            word = line.strip().removeprefix("Depends:").strip()
            if line.strip().startswith("Depends:") and word.startswith("linux-image-"):
                return word
    raise BackendError(
        "No Debian package source is available here (apt knows no linux-image-cloud-amd64 or "
        "linux-image-amd64), so the Linux demo cannot be prepared; the GRUB demo needs none."
    )


def write_initramfs(dest: Path, busybox: Path) -> None:
    """A newc cpio archive: /init, /bin/busybox and the directories they need."""
    members: list[tuple[str, int, bytes]] = [
        ("bin", stat.S_IFDIR | 0o755, b""),
        ("dev", stat.S_IFDIR | 0o755, b""),
        ("proc", stat.S_IFDIR | 0o755, b""),
        ("sys", stat.S_IFDIR | 0o755, b""),
        ("init", stat.S_IFREG | 0o755, INIT_SCRIPT.encode()),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
    ]
    with open(dest, "wb") as f:
        for ino, (name, mode, data) in enumerate(members, start=1):
            f.write(_cpio_entry(ino, name, mode, data))
        f.write(_cpio_entry(0, "TRAILER!!!", 0, b""))
        f.write(b"\0" * (-f.tell() % 512))


def _cpio_entry(ino: int, name: str, mode: int, data: bytes) -> bytes:
    raw_name = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0, 0, 0,
              len(raw_name), 0)
    header = b"070701" + b"".join(b"%08X" % v for v in fields)
    entry = header + raw_name
    entry += b"\0" * (-len(entry) % 4)
    return entry + data + b"\0" * (-len(data) % 4)


def prepare_demo_linux(progress: Progress | None = None,
                       cancel: threading.Event | None = None) -> DemoLinux:
    """The demo's kernel and initramfs (fetched and built on first use)."""
    done = cached()
    if done is not None:
        return done
    report = progress or (lambda _p, _t: None)
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise BackendError(
                f"The Linux demo needs Debian's package tools ({tool} is missing)."
            )
    report(2, "Looking up Debian's kernel package…")
    kernel_pkg = resolve_kernel_package(cancel)
    dest = demo_linux_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmgui-demo-linux-") as work:
        tmp = Path(work)
        os.chmod(tmp, 0o777)  # apt drops to its _apt user to download into it
        report(5, f"Downloading {kernel_pkg} (about 25 MB)…")
        _run(["apt-get", "download", "-q", kernel_pkg], cancel, cwd=tmp)
        report(70, f"Downloading {BUSYBOX_PACKAGE}…")
        _run(["apt-get", "download", "-q", BUSYBOX_PACKAGE], cancel, cwd=tmp)
        report(80, "Unpacking…")
        for deb in sorted(tmp.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], cancel)
        kernels = sorted((tmp / "root" / "boot").glob("vmlinuz-*"))
        busybox = tmp / "root" / "bin" / "busybox"
        if not kernels or not busybox.is_file():
            raise BackendError("Debian's packages did not contain a kernel and busybox.")
        report(90, "Writing the initramfs…")
        partial = dest / ".initramfs.partial"
        try:
            write_initramfs(partial, busybox)
            shutil.copyfile(kernels[-1], dest / ".vmlinuz.partial")
            os.replace(dest / ".vmlinuz.partial", dest / "vmlinuz")
            os.replace(partial, dest / "initramfs.cpio")
        finally:
            for p in (partial, dest / ".vmlinuz.partial"):
                with contextlib.suppress(OSError):
                    p.unlink()
    report(100, "Ready.")
    result = cached()
    assert result is not None
    return result


def demo_linux_config(name: str, demo: DemoLinux) -> VmConfig:
    return VmConfig(name=name, memory_mib=DEMO_LINUX_MEMORY_MIB, vcpus=1, kernel=str(demo.kernel),
                    initrd=str(demo.initrd), cmdline=CMDLINE, network="none")
