"""This computer's free memory, and the sentence for a VM that asks for more."""

from __future__ import annotations

import psutil

MIB = 1024 * 1024


def free_memory_mib() -> int:
    return int(psutil.virtual_memory().available // MIB)


def free_memory_problem(mib: int, free_mib: int | None = None) -> str:
    """VM memory a process on this computer must get now: refused beyond what is free."""
    free = free_memory_mib() if free_mib is None else free_mib
    if mib > free:
        return (
            f"{mib:,} MiB is more memory than this computer has free ({free:,} MiB); "
            "choose less or close other programs."
        )
    return ""
