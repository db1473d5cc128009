"""Who runs libvirt's event loop (events, keepalive, close callbacks) in this process.

libvirt >= 6 implements `virEventRegisterDefaultImpl()` on GLib's *global default*
GMainContext. Under the GUI, Qt's main-thread event dispatcher on Linux is GLib on that same
context, and qasync runs asyncio inside it: libvirt's sources are then dispatched by the Qt loop
on the GUI thread with no help from us.

Rejected, because measured here:
- a dedicated thread looping on `virEventRunDefaultImpl()` fights the Qt thread for ownership of
  the default context: "g_main_context_push_thread_default: assertion 'acquired_context'
  failed", then a segfault;
- `libvirtaio` together with executor calls fails with "QSocketNotifier cannot be enabled or
  disabled from another thread" and then segfaults.

So, checked from inside each running asyncio loop: if the loop is qasync's and this thread owns
GLib's default context (Qt's GLib dispatcher acquires it for good when the QApplication is
created), Qt drives libvirt. Otherwise (plain asyncio: the CLI, benchmarks; or Qt without GLib)
a small asyncio task on the loop's own thread runs pending GLib work without blocking every
`PUMP_INTERVAL_S`. The pump is never used under qasync+GLib: iterating the context from inside a
Qt dispatch would re-enter qasync. Both only touch the default context from the loop's thread, so
they never fight each other or Qt, whichever starts first.

Callbacks arrive on the loop's thread either way; callers still marshal them with
`loop.call_soon_threadsafe` so nothing depends on that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import threading
import weakref

import libvirt

from vmgui.backends.libvirt.errors import silence_stderr

PUMP_INTERVAL_S = 0.05
MAX_DISPATCHES_PER_PUMP = 200

_lock = threading.Lock()
_registered = False
_pumps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


class _GLib:
    def __init__(self) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0")
        lib.g_main_context_default.restype = ctypes.c_void_p
        lib.g_main_context_is_owner.argtypes = [ctypes.c_void_p]
        lib.g_main_context_is_owner.restype = ctypes.c_int
        lib.g_main_context_iteration.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.g_main_context_iteration.restype = ctypes.c_int
        self._lib = lib

    def default_context_owned_here(self) -> bool:
        return bool(self._lib.g_main_context_is_owner(self._lib.g_main_context_default()))

    def dispatch_pending(self) -> None:
        for _ in range(MAX_DISPATCHES_PER_PUMP):
            if not self._lib.g_main_context_iteration(None, 0):
                return


_glib: _GLib | None = None


async def _pump(glib: _GLib) -> None:
    while True:
        glib.dispatch_pending()
        await asyncio.sleep(PUMP_INTERVAL_S)


def ensure_event_loop() -> str:
    """Register libvirt's default event implementation once and make sure something runs it.

    Call from inside the running asyncio loop, before the first `libvirt.open*()` on it.
    Returns how the loop is driven: "glib-host" (Qt's GLib loop) or "pump".
    """
    global _registered, _glib
    loop = asyncio.get_running_loop()
    with _lock:
        if not _registered:
            silence_stderr()
            libvirt.virEventRegisterDefaultImpl()
            _glib = _GLib()
            _registered = True
    assert _glib is not None
    # Any subclass of qasync's loop counts (tests subclass it).
    qasync_loop = any(c.__module__.partition(".")[0] == "qasync" for c in type(loop).__mro__)
    if qasync_loop and _glib.default_context_owned_here():
        return "glib-host"
    task = _pumps.get(loop)
    if task is None or task.done():
        _pumps[loop] = loop.create_task(_pump(_glib), name="libvirt-event-pump")
    return "pump"


async def stop_pump() -> None:
    """Stop this loop's pump (if any), e.g. before the loop closes."""
    task = _pumps.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
