"""The one exception loaders raise: its message is a complete sentence for the user."""

from __future__ import annotations


class BootError(ValueError):
    """The kernel, initrd, command line or memory size cannot be booted; says why in one line."""
