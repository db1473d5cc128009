"""A per-device I/O thread: waits on eventfds and sockets, runs the device's handlers.

Why: with an ioeventfd on QueueNotify, KVM completes the guest's MMIO write in the kernel and
signals an eventfd; the vCPU keeps running while this thread does the disk or network work.
Handlers run one at a time on this thread. A fd whose peer hung up (POLLHUP/POLLERR) gets its
handler run once more and is then dropped, so a dead passt cannot make the thread spin.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable

from vmgui.vmm.record import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def _log() -> logging.Logger:
    """Imported on first use: only error paths log, and logging costs ~3 ms of VMM start-up."""
    import logging  # noqa: PLC0415

    return logging.getLogger(__name__)

_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL


class IoThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: dict[int, tuple[Callable[[], None], bool]] = {}
        self._poll = select.poll()
        self._stop_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._poll.register(self._stop_fd, select.POLLIN)
        self._thread: threading.Thread | None = None
        self._stopping = False

    def add_eventfd(self, fd: int, handler: Callable[[], None]) -> None:
        """Watch an eventfd: its counter is read (cleared) before `handler` runs."""
        self._add(fd, handler, True)

    def add_fd(self, fd: int, handler: Callable[[], None]) -> None:
        """Watch a socket or TAP fd: `handler` reads from it itself."""
        self._add(fd, handler, False)

    def _add(self, fd: int, handler: Callable[[], None], is_eventfd: bool) -> None:
        if self._thread is not None:
            raise RuntimeError("add fds before starting the I/O thread")
        self._handlers[fd] = (handler, is_eventfd)
        self._poll.register(fd, select.POLLIN)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            try:
                events = self._poll.poll()
            except InterruptedError:
                continue
            for fd, revents in events:
                if fd == self._stop_fd:
                    return
                self._dispatch(fd, revents)

    def _dispatch(self, fd: int, revents: int) -> None:
        entry = self._handlers.get(fd)
        if entry is None:
            return
        handler, is_eventfd = entry
        if is_eventfd:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(fd)
        try:
            handler()
        except Exception:  # a handler bug must not silence every other queue of the device
            _log().exception("%s: handler for fd %d failed", self.name, fd)
        if revents & _HANGUP:
            self._poll.unregister(fd)
            del self._handlers[fd]

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; True once it has ended (its fds stay open: their owners close them).

        A handler stuck in host I/O (a backend alive but not reading) keeps the thread alive:
        with a timeout, stop() then returns False and may be called again later.
        """
        self._stopping = True
        if self._stop_fd >= 0:
            os.eventfd_write(self._stop_fd, 1)
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                return False
        self._thread = None
        if self._stop_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._stop_fd)
        self._stop_fd = -1
        return True
