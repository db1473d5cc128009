"""Is a local file something QEMU's direct kernel boot (-kernel) can start? (header check only)

QEMU on x86 boots a Linux bzImage (the "HdrS" setup header at 0x202) or an ELF image (PVH or
multiboot); anything else fails only when the VM starts, with an error far from the choice that
caused it. Blocking (reads HEADER_BYTES): call it on an executor.
"""

from __future__ import annotations

import os

HEADER_BYTES = 4096
BZIMAGE_MAGIC_OFFSET = 0x202
BZIMAGE_MAGIC = b"HdrS"
ELF_MAGIC = b"\x7fELF"


def kernel_problem(path: str) -> str:
    """"" when `path` looks like a bootable kernel image, else a sentence saying why not."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except FileNotFoundError:
        return f"The kernel image {path} does not exist."
    except IsADirectoryError:
        return f"{path} is a folder, not a kernel image."
    except OSError as exc:
        return f"The kernel image {path} cannot be read: {exc.strerror or exc}."
    if head.startswith(ELF_MAGIC):
        return ""
    magic = head[BZIMAGE_MAGIC_OFFSET : BZIMAGE_MAGIC_OFFSET + len(BZIMAGE_MAGIC)]
    if magic == BZIMAGE_MAGIC:
        return ""
    name = os.path.basename(path)
    return f"{name} is not a kernel image (neither a Linux bzImage nor an ELF file)."
