"""The host side of COM1: where the guest's serial output goes and where its input comes from.

Sinks (any combination, from `--serial`, each kind at most once):
- stdio: output to stdout, input from stdin (a terminal is put in raw mode; Ctrl-A x quits);
- file:PATH: output appended to PATH, up to MAX_FILE_BYTES written by this VMM, then a last
  line says output stops there (a chatty guest cannot fill the host's disk);
- unix:PATH: a socket (mode 0600) that viewers connect to and leave while the VM runs. Several
  viewers may be attached at once (at most MAX_VIEWERS): each sees all output, and what any of
  them types goes to the UART's receive path. A viewer first gets the last REPLAY_BYTES of
  output, so one that attaches late still sees the boot messages. A viewer that stops reading
  is disconnected once VIEWER_BACKLOG bytes wait for it.

Threading: `out()` runs on vCPU threads and never blocks: it appends to a buffer of at most
MAX_PENDING bytes (beyond that output is dropped and counted in `dropped`) and wakes the serial
thread, which does all host I/O with poll(), so a stalled reader (a full pipe, a stopped
terminal, a viewer that never reads) never stalls the guest or the VMM's shutdown.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time

from vmgui.vmm.config import SerialSink
from vmgui.vmm.errors import VmmError
from vmgui.vmm.record import TYPE_CHECKING

if TYPE_CHECKING:  # socket is imported only for a unix: sink (start-up time)
    import socket
    from collections.abc import Callable
    from typing import Any

#: Guest output waiting for the serial thread; more is dropped (and counted), never waited for.
MAX_PENDING = 1 << 20
#: Output kept for viewers that attach later (boot messages).
REPLAY_BYTES = 64 << 10
#: Output waiting for one viewer before it is disconnected as stuck.
VIEWER_BACKLOG = 1 << 20
#: Output waiting for stdout before more is dropped (stdout cannot be hung up on).
STDOUT_BACKLOG = 1 << 20
#: Viewers attached at once on a unix: endpoint; more connections are closed at once.
MAX_VIEWERS = 8
#: Bytes a file: sink receives from this VMM before output to it stops.
MAX_FILE_BYTES = 64 << 20
#: Seconds before accepting viewers again after accept() failed (e.g. out of fds).
ACCEPT_RETRY = 0.1
#: One write to a pipe of at most this many bytes never blocks once poll said POLLOUT.
WRITE_CHUNK = select.PIPE_BUF
READ_CHUNK = 4096
#: At shutdown, how long queued output may take to reach its readers.
FLUSH_TIMEOUT = 0.15
#: Ctrl-A then x ends the VMM from a terminal (QEMU's -serial stdio escape).
ESCAPE = 0x01
ESCAPE_QUIT = ord("x")
_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_OUT = select.POLLOUT | select.POLLHUP | select.POLLERR


class _Viewer:
    def __init__(self, sock: socket.socket, replay: bytes) -> None:
        self.sock = sock
        self.backlog = bytearray(replay)


class SerialConsole:
    """Opens the sinks (VmmError with one line if one cannot be used), runs the serial thread."""

    def __init__(
        self,
        sinks: tuple[SerialSink, ...],
        on_quit: Callable[[], None],
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._on_quit = on_quit
        self._lock = threading.Lock()
        self._pending = bytearray()
        self.dropped = 0  # output bytes lost to a full buffer (guest faster than every reader)
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._feed: Callable[[bytes], int] | None = None
        self._rx = bytearray()  # input the UART has not taken yet
        self._replay = bytearray()
        self._stdout_fd = -1
        self._stdout_backlog = bytearray()
        self._stdin_fd = -1
        self._saved_tty: list[Any] | None = None
        self._tty_fd = -1
        self._escape = False
        self._file_fd = -1
        self._file_left = max_file_bytes
        self._file_path = ""
        self._listener: socket.socket | None = None
        self._socket_path = ""
        self._inode: tuple[int, int] | None = None
        self._viewers: list[_Viewer] = []
        self._accept_at = 0.0  # after accept() failed (out of fds): not before this time
        self._stopping = False
        self._thread: threading.Thread | None = None
        try:
            for sink in sinks:
                self._open(sink)
        except BaseException:
            self._release()
            raise

    # ---- set-up

    def _open(self, sink: SerialSink) -> None:
        if sink.kind == "stdio":
            self._stdout_fd = sys.stdout.fileno()
            self._stdin_fd = self._open_stdin()
        elif sink.kind == "file":
            try:  # O_NONBLOCK: a FIFO nobody reads must not hang the start-up in open()
                fd = os.open(
                    sink.path,
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK,
                    0o644,
                )
            except OSError as e:
                raise VmmError(f"--serial file:{sink.path}: {e.strerror}") from None
            self._file_fd, self._file_path = fd, sink.path
        elif sink.kind == "unix":
            from vmgui.vmm.unix_socket import bind_unix_socket, inode_of

            try:
                self._listener = bind_unix_socket(sink.path, "serial")
                self._inode = inode_of(sink.path)
            except OSError as e:
                raise VmmError(f"--serial unix:{sink.path}: {e.strerror or e}") from None
            self._socket_path = sink.path

    def _open_stdin(self) -> int:
        try:
            fd = sys.stdin.fileno()
            os.fstat(fd)
        except (OSError, ValueError, AttributeError):
            return -1
        if os.isatty(fd):
            import termios  # only a terminal needs it: faster boot
            import tty

            self._saved_tty = termios.tcgetattr(fd)
            self._tty_fd = fd
            tty.setraw(fd)
        # Stays blocking (O_NONBLOCK would leak to the parent shell's terminal): the thread
        # reads only after poll() reported data, so one read never blocks.
        return fd

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="serial", daemon=True)
        self._thread.start()

    # ---- called from other threads

    def out(self, data: bytes) -> None:
        """Guest output (vCPU thread): queue it and return at once."""
        with self._lock:
            room = MAX_PENDING - len(self._pending)
            if len(data) > room:
                self.dropped += len(data) - room
                data = data[:room]
            was_empty = not self._pending
            self._pending += data
        if was_empty and data:
            self._wake()

    def attach(self, feed: Callable[[bytes], int] | None) -> None:
        """Where input goes: the current UART's enqueue_input (None while there is no Board)."""
        self._feed = feed
        self._wake()

    def rx_ready(self) -> None:
        """The UART's receive FIFO has room again (Serial's on_rx_empty)."""
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)

    def close(self) -> None:
        """Write what is queued for up to FLUSH_TIMEOUT seconds, then release everything."""
        self._stopping = True
        self._wake()
        thread = self._thread
        if thread is not None:
            thread.join(FLUSH_TIMEOUT + 0.1)
            if thread.is_alive():
                return  # cannot happen (all I/O is polled); never close fds under the thread
        self._thread = None
        self._release()

    def _release(self) -> None:
        self._restore_tty()
        for v in self._viewers:
            v.sock.close()
        self._viewers = []
        if self._listener is not None:
            from vmgui.vmm.unix_socket import unlink_if_same

            unlink_if_same(self._socket_path, self._inode)
            self._listener.close()
            self._listener = None
        for fd in (self._file_fd, self._wake_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._file_fd = self._wake_fd = -1

    def _restore_tty(self) -> None:
        if self._saved_tty is not None:
            import termios  # loaded already by _open_stdin

            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(self._tty_fd, termios.TCSADRAIN, self._saved_tty)
            self._saved_tty = None

    # ---- the serial thread

    def _run(self) -> None:
        deadline: float | None = None
        while True:
            if self._stopping and deadline is None:
                deadline = time.monotonic() + FLUSH_TIMEOUT
            self._distribute()
            self._feed_uart()
            if deadline is not None and (not self._backlogged() or time.monotonic() >= deadline):
                return
            poller = self._poller(accept_input=deadline is None)
            if deadline is not None:
                timeout: float | None = max(deadline - time.monotonic(), 0) * 1000
            elif self._accept_at:
                timeout = max(self._accept_at - time.monotonic(), 0) * 1000
            else:
                timeout = None
            for fd, revents in poller.poll(timeout):
                self._service(fd, revents)

    def _backlogged(self) -> bool:
        return bool(self._stdout_backlog or any(v.backlog for v in self._viewers))

    def _poller(self, accept_input: bool) -> select.poll:
        """poll (unlike epoll) accepts files and /dev/null, and costs no selectors import."""
        p = select.poll()
        p.register(self._wake_fd, select.POLLIN)
        want_input = accept_input and not self._rx
        if self._stdin_fd >= 0 and want_input:
            p.register(self._stdin_fd, _IN)
        if self._stdout_backlog:
            p.register(self._stdout_fd, _OUT)
        if self._listener is not None and accept_input and time.monotonic() >= self._accept_at:
            self._accept_at = 0.0
            p.register(self._listener, select.POLLIN)
        for v in self._viewers:
            events = (_IN if want_input else 0) | (_OUT if v.backlog else 0)
            if events:
                p.register(v.sock, events)
        return p

    def _service(self, fd: int, revents: int) -> None:
        if fd == self._wake_fd:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._wake_fd)
            return
        if fd == self._stdin_fd and revents & _IN:
            self._read_stdin()
        if fd == self._stdout_fd and revents & _OUT:
            self._write_stdout()
        if self._listener is not None and fd == self._listener.fileno():
            self._accept()
            return
        for v in list(self._viewers):
            if v.sock.fileno() == fd:
                self._service_viewer(v, revents)

    def _distribute(self) -> None:
        with self._lock:
            data, self._pending = bytes(self._pending), bytearray()
        if not data:
            return
        self._replay += data
        del self._replay[:-REPLAY_BYTES]
        if self._stdout_fd >= 0:
            room = STDOUT_BACKLOG - len(self._stdout_backlog)
            if len(data) > room:
                with self._lock:  # vCPU threads count under it too
                    self.dropped += len(data) - room
            self._stdout_backlog += data[:room]
            self._write_stdout()
        if self._file_fd >= 0:
            self._write_file(data)
        for v in list(self._viewers):
            if len(v.backlog) + len(data) > VIEWER_BACKLOG:
                self._drop_viewer(v)
            else:
                v.backlog += data
                self._send_viewer(v)

    def _write_stdout(self) -> None:
        """Write what one poll round allows (a chunk no larger than PIPE_BUF never blocks)."""
        try:
            while self._stdout_backlog:
                n = os.write(self._stdout_fd, self._stdout_backlog[:WRITE_CHUNK])
                del self._stdout_backlog[:n]
                if not _writable(self._stdout_fd):
                    return
        except BlockingIOError:
            pass
        except OSError:  # reader gone (EPIPE): keep the guest running, drop this sink
            self._stdout_fd = -1
            self._stdout_backlog.clear()

    def _write_file(self, data: bytes) -> None:
        if len(data) >= self._file_left:
            data = data[: self._file_left] + (
                f"\n[vmgui-vmm: serial output stops here: this file reached the "
                f"{MAX_FILE_BYTES >> 20} MiB limit]\n".encode()
            )
            self._file_left = 0
        else:
            self._file_left -= len(data)
        try:
            while data:
                n = os.write(self._file_fd, data)
                data = data[n:]
        except OSError:  # disk full, a FIFO without reader...: the guest keeps running
            pass
        if self._file_left <= 0:
            os.close(self._file_fd)
            self._file_fd = -1

    def _read_stdin(self) -> None:
        try:
            data = os.read(self._stdin_fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # EOF: no more input from there
            self._stdin_fd = -1
            return
        if self._saved_tty is not None:
            data = self._filter_escape(data)
        self._rx += data

    def _filter_escape(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if self._escape:
                self._escape = False
                if b == ESCAPE_QUIT:
                    self._on_quit()
                    continue
                out.append(b)  # Ctrl-A Ctrl-A (or anything else) passes the byte through
            elif b == ESCAPE:
                self._escape = True
            else:
                out.append(b)
        return bytes(out)

    def _feed_uart(self) -> None:
        feed = self._feed
        if self._rx and feed is not None:
            n = feed(bytes(self._rx))
            del self._rx[:n]

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        except OSError:  # EMFILE...: retry shortly, without spinning meanwhile
            self._accept_at = time.monotonic() + ACCEPT_RETRY
            return
        if len(self._viewers) >= MAX_VIEWERS:
            sock.close()
            return
        sock.setblocking(False)
        v = _Viewer(sock, bytes(self._replay))
        self._viewers.append(v)
        self._send_viewer(v)

    def _service_viewer(self, v: _Viewer, revents: int) -> None:
        if revents & select.POLLIN and not self._rx:
            try:
                data = v.sock.recv(READ_CHUNK)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop_viewer(v)
                return
            if data:
                self._rx += data
        elif revents & (select.POLLHUP | select.POLLERR):
            self._drop_viewer(v)
            return
        if revents & select.POLLOUT:
            self._send_viewer(v)

    def _send_viewer(self, v: _Viewer) -> None:
        try:
            while v.backlog:
                n = v.sock.send(v.backlog)
                del v.backlog[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._drop_viewer(v)

    def _drop_viewer(self, v: _Viewer) -> None:
        if v in self._viewers:
            self._viewers.remove(v)
        v.sock.close()


def _writable(fd: int) -> bool:
    p = select.poll()
    p.register(fd, select.POLLOUT)
    return bool(p.poll(0))
