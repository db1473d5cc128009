"""Turning libvirt's errors into sentences a person can act on, and checking URIs up front.

libvirt messages carry a category prefix ("Requested operation is not valid: ...", "internal
error: ...") and sometimes a trailing newline; users need the reason, the VM, and what to do.
"""

from __future__ import annotations

import threading

import libvirt

from vmgui.backends.base import BackendError, validate_uri

__all__ = ["validate_uri"]  # the URI rule lives with the protocol; kept importable here

_PREFIXES = (
    "error:",
    "internal error:",
    "Requested operation is not valid:",
    "operation failed:",
    "invalid argument:",
    "XML error:",
    "unsupported configuration:",
    "argument unsupported:",
    "Operation not supported:",
    "this function is not supported by the connection driver:",
)
# error codes that mean "the connection itself is gone", not "this action failed"
CONNECTION_LOST_CODES = frozenset(
    {
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_SYSTEM_ERROR,
        libvirt.VIR_ERR_RPC,
        libvirt.VIR_ERR_INTERNAL_ERROR,
        libvirt.VIR_ERR_INVALID_CONN,
    }
)

_silenced = False
_silence_lock = threading.Lock()


def silence_stderr() -> None:
    """libvirt prints every error to stderr by default; we report them ourselves."""
    global _silenced
    with _silence_lock:
        if not _silenced:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            _silenced = True


def clean_message(err: libvirt.libvirtError) -> str:
    """libvirt's message without category prefixes, as one line without a final period."""
    msg = (err.get_error_message() or str(err) or "unknown libvirt error").strip()
    msg = msg.splitlines()[0].strip() if msg else msg
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if msg.lower().startswith(prefix.lower()):
                msg = msg[len(prefix) :].strip()
                changed = True
    return msg.rstrip(".") or "unknown libvirt error"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def is_connection_lost(err: libvirt.libvirtError) -> bool:
    code = err.get_error_code()
    if code not in CONNECTION_LOST_CODES:
        return False
    msg = (err.get_error_message() or "").lower()
    if code in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN):
        return True
    return any(
        s in msg
        for s in (
            "end of file",
            "closed",
            "connection reset",
            "broken pipe",
            "keepalive",
            "not connected",
        )
    )


def action_error(err: libvirt.libvirtError, action: str, vm_name: str = "") -> BackendError:
    """A BackendError for `action` ("start", "delete", ...) on VM `vm_name` failing."""
    code = err.get_error_code()
    detail = clean_message(err)
    what = f"{action} '{vm_name}'" if vm_name else action
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return BackendError(_sentence(f"Cannot {what}: the VM no longer exists"))
    if code == libvirt.VIR_ERR_AUTH_CANCELLED:
        return BackendError(_sentence(f"Cannot {what}: authentication was cancelled"))
    if code == libvirt.VIR_ERR_AUTH_FAILED:
        return BackendError(_sentence(f"Cannot {what}: authentication failed ({detail})"))
    return BackendError(_sentence(f"Cannot {what}: {detail}"))


def connect_error(err: libvirt.libvirtError, uri: str) -> BackendError:
    code = err.get_error_code()
    detail = clean_message(err)
    if code == libvirt.VIR_ERR_AUTH_CANCELLED:
        return BackendError(f"Cannot connect to {uri}: authentication was cancelled.")
    if code == libvirt.VIR_ERR_AUTH_FAILED:
        return BackendError(_sentence(f"Cannot connect to {uri}: authentication failed ({detail})"))
    return BackendError(_sentence(f"Cannot connect to {uri}: {detail}"))

