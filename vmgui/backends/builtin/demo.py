"""The "Demo" boot source: a small GRUB ISO built on this computer with `grub-mkrescue`.

A stock Linux kernel cannot boot where the host emulates guest ring 0, but SeaBIOS and GRUB
run fine there, so a new user still sees a real boot screen: a GRUB menu whose entries print a
greeting, reboot or power off. The ISO is built once into the user's cache directory and
reused; the build runs `grub-mkrescue` (Debian packages grub-pc-bin, grub-common, xorriso,
mtools) and can be cancelled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from vmgui.backends.base import BackendError
from vmgui.backends.builtin import paths
from vmgui.model import VmConfig

log = logging.getLogger(__name__)

ISO_NAME = "grub-demo.iso"
#: Bump when GRUB_CFG changes, so a cached ISO of the old menu is rebuilt.
DEMO_VERSION = 1
DEMO_MEMORY_MIB = 64
BUILD_TIMEOUT_S = 120.0
TOOLS = {"grub-mkrescue": "grub-common", "xorriso": "xorriso", "mformat": "mtools"}
GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")

GRUB_CFG = """\
set timeout=-1
set default=0
menuentry "Hello from vmgui: this VM runs on the built-in VMM" {
    echo "Hello! SeaBIOS loaded GRUB from an ISO image built on this computer."
    echo "The keyboard reaches GRUB through the console: press Esc to return to the menu."
    sleep --interruptible 3600
}
menuentry "Show this machine's memory map" {
    lsmmap
    sleep --interruptible 3600
}
menuentry "Reboot" {
    reboot
}
menuentry "Power off" {
    halt
}
"""


def missing_tools() -> list[str]:
    """Debian packages the demo build needs that are not installed."""
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not GRUB_PC_DIR.is_dir():
        missing.append("grub-pc-bin")
    return missing


def missing_tools_sentence(missing: list[str]) -> str:
    return "The demo needs GRUB's tools: install the Debian packages " + ", ".join(missing) + "."


def demo_iso_path() -> Path:
    return paths.cache_dir() / f"demo-v{DEMO_VERSION}" / ISO_NAME


def build_demo_iso(cancel: threading.Event | None = None) -> Path:
    """The demo ISO, built now unless cached; BackendError (one sentence) when it cannot be."""
    dest = demo_iso_path()
    if dest.is_file():
        return dest
    missing = missing_tools()
    if missing:
        raise BackendError(missing_tools_sentence(missing))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmgui-demo-") as work:
        tree = Path(work) / "tree"
        (tree / "boot" / "grub").mkdir(parents=True)
        (tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
        partial = dest.parent / f".{ISO_NAME}.partial"
        proc = subprocess.Popen(
            ["grub-mkrescue", "-o", str(partial), str(tree)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            output = _wait(proc, cancel)
            if proc.returncode != 0:
                log.warning("grub-mkrescue failed (%s): %s", proc.returncode, output)
                last = output.strip().splitlines()[-1:] or ["no output"]
                raise BackendError(f"Building the demo ISO failed: {last[0]}")
            os.replace(partial, dest)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
    return dest


def _wait(proc: subprocess.Popen[bytes], cancel: threading.Event | None) -> str:
    """grub-mkrescue's output once it ended; a cancel at any point discards the result."""
    waited = 0.0
    while True:
        cancelled = cancel is not None and cancel.is_set()
        try:
            out, _ = proc.communicate(timeout=0 if cancelled else 0.1)
            if not cancelled:
                return out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            waited += 0.1
            if not cancelled and waited <= BUILD_TIMEOUT_S:
                continue
            proc.kill()
            proc.communicate()
        if cancelled:
            raise BackendError("Building the demo ISO was cancelled.")
        raise BackendError("Building the demo ISO took too long.")


def demo_config(name: str, iso: Path) -> VmConfig:
    return VmConfig(name=name, memory_mib=DEMO_MEMORY_MIB, vcpus=1, iso=str(iso), network="none")
