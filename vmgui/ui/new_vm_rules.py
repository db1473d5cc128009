"""The new-VM wizard's decisions, kept free of widgets so each rule is testable on its own.

Which virtualization type to offer by default (and what to warn about), what name and disk path
to propose, which host limits bound memory and vCPUs, and whether a file the user picked can be
used: the pages only display these answers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from vmgui.backends.base import BackendError, is_local_uri
from vmgui.host.probe import emulation_warning
from vmgui.model.host import DomainCapabilities, HostResources, HostStatus, Verdict

MIN_MEMORY_MIB = 16  # the libvirt XML builder refuses less
DEFAULT_MEMORY_MIB = 1024
DEFAULT_DISK_GIB = 10
MAX_DISK_GIB = 64 * 1024
DISK_SUFFIX = ".img"  # define() creates raw images; a .qcow2 name would be misread as qcow2
#: Memory above this share of the host's RAM earns a caution under the memory field.
MEMORY_CAUTION_SHARE = 0.75

NameCheck = Callable[[str], None]


# --- names ----------------------------------------------------------------------------------


def name_problem(name: str, check: NameCheck, taken: Iterable[str]) -> str:
    """Why `name` cannot be used on this connection, or ""."""
    try:
        check(name)
    except BackendError as exc:
        return str(exc)
    if name in set(taken):
        return f"A VM named '{name}' already exists on this connection; choose another name."
    return ""


_VERSIONED_SUFFIX = re.compile(r"\.(iso|img|qcow2|raw|vmdk|vdi|elf|xz|gz|bz2|zst)$", re.IGNORECASE)


def name_from_file(path: str) -> str:
    """A VM name proposed from an installer or image file ("debian-12.iso" -> "debian-12")."""
    stem = os.path.basename(path.strip().rstrip("/"))
    while True:
        shorter = _VERSIONED_SUFFIX.sub("", stem)
        if shorter == stem:
            break
        stem = shorter
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-.")
    return stem[:60] or "vm"


def unique_name(base: str, taken: Iterable[str]) -> str:
    """`base`, or `base-2`, `base-3`... whichever is free."""
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


# --- files ----------------------------------------------------------------------------------


def file_problem(path: str, what: str) -> str:
    """Why a local file the VM should read cannot be used, or "" (a sentence naming the file)."""
    if not path.strip():
        return f"Choose the {what}."
    p = Path(path).expanduser()
    if not p.exists():
        return f"The {what} {path} does not exist."
    if p.is_dir():
        return f"{path} is a folder, not a {what}."
    if not os.access(p, os.R_OK):
        return f"The {what} {path} cannot be read (permission denied)."
    return ""


def new_disk_problem(path: str) -> str:
    """Why a new disk image cannot be created at `path` on this machine, or ""."""
    if not path.strip():
        return "Choose where to create the disk image."
    p = Path(path).expanduser()
    if not p.is_absolute():
        return f"The disk image path {path} must be absolute (start with /)."
    if p.exists():
        return f"The file {path} already exists; choose another file name."
    folder = p.parent
    while not folder.exists():  # missing folders are created at Finish, if their parent allows
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return f"Cannot create a file in {folder} (permission denied)."
    return ""


# --- host limits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostLimits:
    memory_mib: int
    cpus: int

    @property
    def default_memory_mib(self) -> int:
        """1 GiB, or half the host's RAM on a small machine (in 64 MiB steps)."""
        half = max(MIN_MEMORY_MIB, (self.memory_mib // 2) // 64 * 64)
        return min(DEFAULT_MEMORY_MIB, half)

    def memory_caution(self, mib: int) -> str:
        if mib > self.memory_mib * MEMORY_CAUTION_SHARE:
            return (
                f"{mib:,} MiB is most of the host's {self.memory_mib:,} MiB of memory; "
                "it may become slow."
            )
        return ""


def host_limits(resources: HostResources | None = None) -> HostLimits:
    """The connection's host's limits; this computer's when that host has not said."""
    if resources is not None:
        return HostLimits(max(MIN_MEMORY_MIB, resources.memory_mib), max(1, resources.cpus))
    return HostLimits(
        memory_mib=max(MIN_MEMORY_MIB, psutil.virtual_memory().total // (1024 * 1024)),
        cpus=max(1, psutil.cpu_count(logical=True) or 1),
    )


# --- virtualization type ----------------------------------------------------------------------


@dataclass(frozen=True)
class TypeAdvice:
    """What the type choice should default to, what may be chosen, and what to tell the user."""

    default: str  # "kvm" or "qemu"
    kvm_offered: bool
    qemu_offered: bool
    warning: str = ""  # shown prominently (emulated ring 0)
    note: str = ""  # shown plainly (why kvm is unavailable, or still unknown)


def type_advice(uri: str, host: HostStatus | None, caps: DomainCapabilities | None) -> TypeAdvice:
    """Default to 'kvm' only where it is offered and the host measured it hardware-assisted.

    The host measurement applies to local connections only: a remote daemon runs guests on
    another CPU, and its domain capabilities are the only evidence there.
    """
    known = caps is not None and bool(caps.domain_types)
    kvm_offered = caps.kvm if caps is not None and known else True
    qemu_offered = ("qemu" in caps.domain_types) if caps is not None and known else True
    warning = emulation_warning(host) if host is not None and is_local_uri(uri) else ""
    note = ""
    if not kvm_offered:
        note = (
            "This connection offers no KVM domain type, so guests run with QEMU software "
            "emulation (TCG)."
        )
    elif caps is not None and caps.error and not known:
        note = f"The connection's capabilities are unknown ({caps.error})."
    elif host is not None and host.verdict is Verdict.UNAVAILABLE and is_local_uri(uri):
        note = f"{host.headline}."
    emulated = bool(warning) or (
        host is not None and is_local_uri(uri) and host.verdict is Verdict.UNAVAILABLE
    )
    default = "qemu" if not kvm_offered or (emulated and qemu_offered) else "kvm"
    return TypeAdvice(default, kvm_offered, qemu_offered, warning, note)
