"""What to build: the machine configuration the CLI (or the GUI's backend) hands to Machine.

Kept apart from machine.py so options can be added without touching assembly: a new device kind
is one field here, one argparse option in cli.py, one construction step in board.py. Virtio
devices arrive as factories so this module needs no virtio imports (see `VirtioFactory`).
"""

from __future__ import annotations

import os
import re

from vmgui.vmm import layout
from vmgui.vmm.errors import VmmError
from vmgui.vmm.record import TYPE_CHECKING, field, record

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_MEMORY = 256 * MiB
MIN_MEMORY = 2 * MiB  # below 1 MiB there is no room for a PVH/bzImage kernel at HIMEM_START
MAX_MEMORY = 64 * GiB
DEFAULT_FRAMEBUFFER = (1024, 768)

if TYPE_CHECKING:  # not at run time: importing typing costs the VMM's start-up ~4 ms
    from collections.abc import Callable
    from typing import Any, Literal

    #: A callable returning a fresh virtio device model (vmgui.vmm.virtio.device.VirtioDevice);
    #: called once per power-on so a reset gets a clean device.
    VirtioFactory = Callable[[], Any]
    OnReboot = Literal["stop", "restart"]


@record(frozen=True)
class SerialSink:
    """One place COM1 goes (serial_console.py): "stdio" (stdin feeds it), "file" (output
    appended to path), "unix" (a socket viewers attach to), "none"."""

    kind: Literal["stdio", "file", "unix", "none"] = "stdio"
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> SerialSink:
        if text in ("stdio", "none"):
            return cls(text)  # type: ignore[arg-type]
        for kind in ("file", "unix"):
            if text.startswith(f"{kind}:") and len(text) > len(kind) + 1:
                return cls(kind, text[len(kind) + 1 :])  # type: ignore[arg-type]
        raise VmmError(f"--serial {text!r}: expected stdio, none, file:PATH or unix:PATH")

    @classmethod
    def parse_all(cls, texts: list[str] | None) -> tuple[SerialSink, ...]:
        """Every --serial given (default stdio); each kind at most once, "none" alone."""
        sinks = tuple(cls.parse(t) for t in texts or ["stdio"])
        kinds = [s.kind for s in sinks]
        if "none" in kinds and len(sinks) > 1:
            raise VmmError("--serial none cannot be combined with other --serial options")
        for kind in kinds:
            if kinds.count(kind) > 1:
                raise VmmError(f"--serial {kind} given twice: each kind at most once")
        return tuple(s for s in sinks if s.kind != "none")


@record
class MachineConfig:
    #: What boots: a kernel file, or firmware ("seabios" or a BIOS image path); exactly one.
    kernel: str = ""
    initrd: str | None = None
    cmdline: str = ""
    memory: int = DEFAULT_MEMORY
    cpus: int = 1
    framebuffer: tuple[int, int] | None = DEFAULT_FRAMEBUFFER
    serial: tuple[SerialSink, ...] = (SerialSink(),)
    qmp: str | None = None
    on_reboot: OnReboot = "stop"
    #: virtio-mmio devices in slot order (layout.VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE).
    virtio: list[VirtioFactory] = field(default_factory=list)
    #: The VM's name: seeds stable per-VM identities (e.g. the virtio-net MAC address).
    name: str = "vmgui"
    firmware: str | None = None

    def validate(self) -> None:
        """Raise VmmError with one line for the first thing that cannot work."""
        self._validate_boot_source()
        for what, path in (("kernel", self.kernel), ("initrd", self.initrd)):
            if not path:
                continue
            if not os.path.exists(path):
                raise VmmError(f"{what} file not found: {path}")
            if not os.path.isfile(path):
                raise VmmError(f"{what} is not a regular file: {path}")
            if not os.access(path, os.R_OK):
                raise VmmError(f"{what} file is not readable: {path}")
        if not MIN_MEMORY <= self.memory <= MAX_MEMORY:
            raise VmmError(
                f"memory size {format_size(self.memory)} is out of range "
                f"({format_size(MIN_MEMORY)}..{format_size(MAX_MEMORY)})"
            )
        limit = max_cpus()
        if not 1 <= self.cpus <= limit:
            raise VmmError(f"--cpus {self.cpus}: must be 1..{limit}")
        if self.on_reboot not in ("stop", "restart"):
            raise VmmError(f"--on-reboot {self.on_reboot!r}: expected stop or restart")
        if len(self.virtio) > layout.VIRTIO_MAX_DEVICES:
            raise VmmError(f"at most {layout.VIRTIO_MAX_DEVICES} virtio devices")
        for sink in self.serial:
            if sink.kind == "file":
                check_output_file(sink.path, f"--serial file:{sink.path}")

    def _validate_boot_source(self) -> None:
        if self.kernel and self.firmware:
            raise VmmError("--kernel and --firmware are alternatives: give only one")
        if not self.kernel and not self.firmware:
            raise VmmError("nothing to boot: give --kernel PATH or --firmware seabios|PATH")
        if self.firmware and (self.initrd or self.cmdline):
            raise VmmError("--initrd and --cmdline need --kernel (firmware boots from a disk)")


def check_output_file(path: str, what: str) -> None:
    """A file the VMM appends to must be absent, a regular file or a character device (such as
    /dev/null): checked with stat, which never blocks, so a FIFO or a directory is one line
    instead of an open() that hangs start-up (and SIGTERM with it) or a traceback."""
    import stat  # noqa: PLC0415 - only for file outputs

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise VmmError(f"{what}: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise VmmError(f"{what}: is a directory")
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
        raise VmmError(f"{what}: not a regular file (a FIFO or socket would block the VM)")


def printable(text: str) -> str:
    """`text` with undecodable file-name bytes (surrogate escapes) shown as U+FFFD, so a
    message about a non-UTF-8 file name is still one clean line."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def max_cpus() -> int:
    """What the MP table (and the MADT) can describe; Machine also checks KVM_CAP_MAX_VCPUS.

    Imported here, not at the top: cli.py imports this module before it starts the KVM set-up
    thread (vm_setup.EarlyStart), and the loaders can be imported while that thread works.
    """
    from vmgui.vmm.acpi.tables import MAX_CPUS as MADT_MAX_CPUS  # noqa: PLC0415
    from vmgui.vmm.boot.mptable import MAX_CPUS as MPTABLE_MAX_CPUS  # noqa: PLC0415

    return min(MPTABLE_MAX_CPUS, MADT_MAX_CPUS)


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": MiB, "K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}


def parse_size(text: str) -> int:
    """QEMU-style memory size: "256M", "1G", "512MiB"; a bare number means MiB."""
    m = _SIZE_RE.match(text)
    if not m:
        raise VmmError(f"memory size {text!r}: expected a number with an optional K/M/G suffix")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    for unit, size in (("G", GiB), ("M", MiB), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def parse_framebuffer(text: str) -> tuple[int, int] | None:
    """"WxH" or "none"."""
    if text == "none":
        return None
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m:
        raise VmmError(f"--framebuffer {text!r}: expected WIDTHxHEIGHT (e.g. 1024x768) or none")
    return int(m.group(1)), int(m.group(2))
