"""Backends: the async Backend protocol and its libvirt and built-in implementations (no widgets)."""

from vmgui.backends.base import (
    Backend,
    BackendError,
    BackendEvent,
    ConnectionChanged,
    EventStream,
    VmChanged,
    VmRemoved,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendEvent",
    "ConnectionChanged",
    "EventStream",
    "VmChanged",
    "VmRemoved",
]
