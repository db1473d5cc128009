"""Checks of what a user asks for, each answering with one sentence ("" when fine).

The wizard, the Edit dialog, the CLI and `define()` share these, so every entry point refuses
the same things the same way. They read files: call them from an executor.
"""

from __future__ import annotations

import os

import psutil

from vmgui.backends.base import BackendError
from vmgui.backends.builtin.definitions import Definition
from vmgui.backends.builtin.launcher import disk_users
from vmgui.host.memory import free_memory_problem
from vmgui.model.host import HostResources

MIN_MEMORY_MIB = 2  # the VMM's own lower bound (vmgui.vmm.config.MIN_MEMORY)
MAX_MEMORY_MIB = 64 * 1024
#: Kernels are a few MiB to a few tens of MiB; the detector needs the whole ELF header area.
MAX_KERNEL_BYTES = 256 << 20
ISO_MAGIC_OFFSET = 0x8001
ISO_MAGIC = b"CD001"


def name_problem(name: str, taken: set[str]) -> str:
    if not name.strip():
        return "A VM needs a name."
    if name != name.strip():
        return f"The VM name '{name}' starts or ends with a space."
    if "/" in name or any(not c.isprintable() for c in name):
        return f"The VM name '{name}' contains characters that are not allowed."
    if len(name) > 200:
        return "The VM name is too long (at most 200 characters)."
    if name in taken:
        return f"A VM named '{name}' already exists on this connection; choose another name."
    return ""


def memory_problem(mib: int, free_mib: int | None = None) -> str:
    if not MIN_MEMORY_MIB <= mib <= MAX_MEMORY_MIB:
        return f"Memory must be between {MIN_MEMORY_MIB} MiB and {MAX_MEMORY_MIB:,} MiB."
    return free_memory_problem(mib, free_mib)


def host_resources() -> HostResources:
    from vmgui.vmm.config import max_cpus  # the VMM's own limit

    return HostResources(
        memory_mib=int(psutil.virtual_memory().total // (1024 * 1024)),
        cpus=min(max_cpus(), psutil.cpu_count(logical=True) or 1),
    )


def cpus_problem(n: int) -> str:
    limit = host_resources().cpus
    if not 1 <= n <= limit:
        return f"Virtual CPUs must be between 1 and {limit}."
    return ""


def _file_problem(path: str, what: str) -> str:
    if not path:
        return f"Choose the {what}."
    if not os.path.exists(path):
        return f"The {what} {path} does not exist."
    if not os.path.isfile(path):
        return f"The {what} {path} is not a regular file."
    if not os.access(path, os.R_OK):
        return f"The {what} {path} cannot be read (permission denied)."
    return ""


def kernel_problem(path: str) -> str:
    """"" when the VMM can boot `path` (a bzImage or PVH ELF), else why not."""
    problem = _file_problem(path, "kernel")
    if problem:
        return problem
    from vmgui.vmm.boot.detect import detect_kernel  # the VMM's own detector
    from vmgui.vmm.boot.errors import BootError

    try:
        if os.path.getsize(path) > MAX_KERNEL_BYTES:
            return f"The kernel {path} is too large to be a kernel image."
        with open(path, "rb") as f:
            data = f.read(MAX_KERNEL_BYTES)
        detect_kernel(data)
    except OSError as exc:
        return f"The kernel {path} cannot be read: {exc.strerror or exc}."
    except (BootError, ValueError, IndexError) as exc:
        return f"The file {path} is not a bzImage or PVH ELF kernel ({exc})."
    return ""


def iso_problem(path: str) -> str:
    problem = _file_problem(path, "ISO image")
    if problem:
        return problem
    try:
        with open(path, "rb") as f:
            f.seek(ISO_MAGIC_OFFSET)
            magic = f.read(len(ISO_MAGIC))
    except OSError as exc:
        return f"The ISO image {path} cannot be read: {exc.strerror or exc}."
    if magic != ISO_MAGIC:
        return f"The file {path} is not an ISO 9660 image."
    return ""


def disk_problem(path: str, others: list[Definition], read_only: bool = False) -> str:
    """An existing raw image: readable (writable unless read-only) and no other VM's disk."""
    problem = _file_problem(path, "disk image")
    if problem:
        return problem
    if not read_only and not os.access(path, os.W_OK):
        return f"The disk image {path} is not writable."
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        return f"The disk image {path} cannot be read: {exc.strerror or exc}."
    if head == b"QFI\xfb":
        return (
            f"The disk image {path} is in qcow2 format; the built-in VMM needs a raw image "
            f"(convert it: qemu-img convert -O raw {path} disk.img)."
        )
    if not read_only:
        users = disk_users(path, others)
        if users:
            return f"The disk image {path} is already the disk of the VM “{users[0].name}”."
    return ""


def definition_problem(d: Definition, others: list[Definition]) -> str:
    """The first thing wrong with a definition about to be saved, or ""."""
    problem = name_problem(d.name, {o.name for o in others})
    if not problem and not MIN_MEMORY_MIB <= d.memory_mib <= MAX_MEMORY_MIB:
        problem = memory_problem(d.memory_mib, free_mib=MAX_MEMORY_MIB)
    problem = problem or cpus_problem(d.vcpus)
    if not problem and d.kernel:
        problem = kernel_problem(d.kernel)
        if not problem and d.initrd:
            problem = _file_problem(d.initrd, "initrd")
    elif not problem and d.iso:
        problem = iso_problem(d.iso)
    elif not problem and not d.disks:
        problem = "Choose what the VM starts from: a kernel, an ISO image or a disk image."
    for disk in d.disks:
        if problem:
            break
        if disk.path not in d.created_disks:
            problem = disk_problem(disk.path, others, disk.readonly)
        elif disk_users(disk.path, others):
            problem = f"The disk image {disk.path} is already the disk of another VM."
    if not problem and d.network not in ("none", "passt"):
        problem = f"Unknown network “{d.network}”: choose none or passt."
    return problem


def require(problem: str) -> None:
    if problem:
        raise BackendError(problem)
