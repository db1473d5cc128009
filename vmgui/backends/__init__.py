"""Backends: the async Backend protocol and its libvirt and built-in implementations (no widgets)."""

from vmgui.backends.base import (
    BUILTIN_URI,
    Backend,
    BackendError,
    BackendEvent,
    ConnectionChanged,
    EventStream,
    VmChanged,
    VmRemoved,
    is_builtin,
)

__all__ = [
    "BUILTIN_URI",
    "Backend",
    "BackendError",
    "BackendEvent",
    "ConnectionChanged",
    "EventStream",
    "VmChanged",
    "VmRemoved",
    "is_builtin",
]
