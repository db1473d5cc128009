"""Where virtio-net frames go on the host: a passt process, or an existing TAP device.

Neither backend ever blocks the thread that sends or receives (a vCPU or the device's I/O
thread, holding the device's lock): the I/O thread polls `fileno()`, and `recv_frames()` returns
whatever complete Ethernet frames are ready. A TAP send that fails for any reason (would block,
interface down, ...) drops the frame, as a NIC under load does; each reason is logged as one line
the first time, never once per frame. A stream (passt) send only queues the frame for the
backend's writer thread, which alone may wait for passt: a partial frame would desynchronise the
stream, so frames are written whole. While STREAM_SEND_QUEUE bytes wait, `can_send()` is False
and the device leaves the guest's frames in its transmit queue (backpressure, as QEMU does);
`space_fd` becomes readable when the writer has made room. When the far end goes away, poll
reports POLLHUP and the I/O thread stops watching the fd.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import os
import signal
import socket
import struct
import subprocess
import threading
from typing import Protocol

from vmgui.vmm.virtio.device import DeviceSetupError

#: Largest frame we carry: 1500-byte MTU + Ethernet header (+ a VLAN tag), no offloads.
MAX_FRAME = 1522
#: Bytes read from a stream backend per call.
STREAM_READ_CHUNK = 256 * 1024
#: A stream peer's partial frame must never grow our buffer without bound.
STREAM_MAX_BUFFERED = 4 << 20
#: Bytes of frames queued for a stream peer before the device stops taking the guest's frames;
#: it takes them again once the writer has brought the queue below half of this.
STREAM_SEND_QUEUE = 1 << 20
#: How long close() waits for the writer thread (its socket is shut down first, which ends it).
STREAM_WRITER_JOIN = 2.0
#: How much of passt's messages is read when it stops (the last line is reported).
PASST_MESSAGES_MAX = 64 * 1024
PASST_STOP_TIMEOUT = 5.0
#: How long the I/O thread waits for a passt that closed its socket to exit, for its status.
PASST_EXIT_WAIT = 0.5

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000


class NetBackendError(DeviceSetupError):
    """A network backend that cannot be set up; the message is one line for the user."""


class NetBackend(Protocol):
    #: An eventfd that becomes readable when a backend that refused frames (`can_send()`
    #: False) can take them again; None for backends that never refuse.
    space_fd: int | None

    def fileno(self) -> int: ...

    def can_send(self) -> bool: ...

    def send(self, frame: bytes) -> bool: ...

    def recv_frames(self) -> list[bytes]: ...

    def close(self) -> None: ...


class StreamBackend:
    """Frames over a connected stream socket as a 4-byte big-endian length + the frame.

    This is passt's (and QEMU's `-netdev stream`) framing.
    """

    def __init__(self, sock: socket.socket) -> None:
        # Blocking for the writer thread's sends (a partial frame would desynchronise the
        # stream), MSG_DONTWAIT for receives (the I/O thread only reads when poll says so).
        sock.setblocking(True)
        self.sock = sock
        self._buffer = bytearray()
        self.dropped = 0
        self.peer_gone = False
        self.space_fd: int | None = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._out: collections.deque[bytes] = collections.deque()
        self._out_bytes = 0
        self._refused = False  # can_send() said no since the writer last made room
        self._send_failed = False  # the peer stopped taking data: nothing more can be sent
        self._closing = False
        self._cond = threading.Condition()
        self._writer = threading.Thread(target=self._write_frames, name="net-writer", daemon=True)
        self._writer.start()

    def fileno(self) -> int:
        return self.sock.fileno()

    def can_send(self) -> bool:
        with self._cond:
            if self._out_bytes < STREAM_SEND_QUEUE:
                return True
            self._refused = True
            return False

    def send(self, frame: bytes) -> bool:
        """Queue one frame for the writer thread; never waits for the peer."""
        with self._cond:
            if self._send_failed or self._closing:
                self.dropped += 1
                return False
            record = struct.pack("!I", len(frame)) + frame
            self._out.append(record)
            self._out_bytes += len(record)
            self._cond.notify()
        return True

    def _write_frames(self) -> None:
        """The writer thread: the only place that waits for the peer to take data."""
        while True:
            with self._cond:
                while not self._out and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                record = self._out.popleft()
            try:
                self.sock.sendall(record)
            except OSError:  # the far end is gone: what is queued can never be sent
                with self._cond:
                    self.dropped += 1 + len(self._out)
                    self._out.clear()
                    self._out_bytes = 0
                    self._send_failed = True  # recv_frames() sees the hang-up and says why
                return
            with self._cond:
                self._out_bytes -= len(record)
                wake = self._refused and self._out_bytes < STREAM_SEND_QUEUE // 2
                if wake:
                    self._refused = False
            if wake and self.space_fd is not None:
                os.eventfd_write(self.space_fd, 1)

    def recv_frames(self) -> list[bytes]:
        try:
            data = self.sock.recv(STREAM_READ_CHUNK, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data = b""
        if not data:
            if not self.peer_gone:
                self.peer_gone = True
                self._on_peer_gone()
            return []
        self._buffer += data
        frames: list[bytes] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = struct.unpack_from("!I", buf, pos)
            if len(buf) - pos - 4 < n:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        del buf[:pos]
        if len(buf) > STREAM_MAX_BUFFERED:  # a peer announcing absurd lengths: resynchronise
            buf.clear()
        return frames

    def _on_peer_gone(self) -> None:
        """The far end closed the stream (once); subclasses say why."""

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # ends a sendall the peer is not reading
        self._writer.join(STREAM_WRITER_JOIN)
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.space_fd is not None:
            os.close(self.space_fd)
            self.space_fd = None


class PasstBackend(StreamBackend):
    """passt on one end of a socketpair we create; it lives exactly as long as this backend.

    passt gives the guest DHCP (192.0.2.2/24, router 192.0.2.1), ARP, NDP and NAT to the host's
    network, all without root. Started as root it drops to `nobody` by itself.
    """

    def __init__(
        self,
        passt: str = "passt",
        address: str = "192.0.2.2",
        prefix: int = 24,
        gateway: str = "192.0.2.1",
    ) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [
            passt,
            "-f",
            "-q",
            "-F",
            str(theirs.fileno()),
            "-t",
            "none",
            "-u",
            "none",
            "-a",
            address,
            "-n",
            str(prefix),
            "-g",
            gateway,
        ]
        # passt's messages go to an unlinked file, not a pipe: a pipe nobody drains while the
        # VM runs would fill up and block passt. Read only if passt stops.
        import tempfile  # noqa: PLC0415 - keeps it off the VMM's start-up path

        self._messages = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as passt
        try:
            self.process = subprocess.Popen(
                cmd,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._messages,
            )
        except OSError as e:
            ours.close()
            self._messages.close()
            raise NetBackendError(f"cannot start passt ({passt}): {e.strerror}") from None
        finally:
            theirs.close()
        super().__init__(ours)
        self.failure = ""

    def _on_peer_gone(self) -> None:
        """passt went away: say why once (the guest keeps running, without a network)."""
        try:
            status: int | str = self.process.wait(PASST_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            status = "still running"
        self._messages.seek(0)
        lines = [
            ln.strip()
            for ln in self._messages.read(PASST_MESSAGES_MAX).decode(errors="replace").splitlines()
            if ln.strip() and "syslog" not in ln
        ]
        why = lines[-1] if lines else "no message"
        self.failure = f"passt stopped (exit status {status}): {why}; the guest has no network"
        import logging  # noqa: PLC0415 - only this error path logs

        logging.getLogger(__name__).warning("%s", self.failure)

    def close(self) -> None:
        super().close()
        self._messages.close()
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(ProcessLookupError):  # a stopped passt must see SIGTERM
                os.kill(self.process.pid, signal.SIGCONT)
            try:
                self.process.wait(PASST_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class TapBackend:
    """An existing (or, with CAP_NET_ADMIN, new) TAP interface: one read() is one frame."""

    def __init__(self, name: str) -> None:
        if not name or len(name.encode()) >= 16:
            raise NetBackendError(f"invalid TAP interface name {name!r}")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise NetBackendError(f"cannot open /dev/net/tun: {e.strerror}") from None
        try:
            ifreq = struct.pack("16sH22x", name.encode(), _IFF_TAP | _IFF_NO_PI)
            fcntl.ioctl(fd, _TUNSETIFF, ifreq)
        except OSError as e:
            os.close(fd)
            raise NetBackendError(f"cannot attach to TAP device {name}: {e.strerror}") from None
        self.fd = fd
        self.name = name
        self.dropped = 0
        self.send_errors: set[int] = set()  # errnos already logged
        self.space_fd: int | None = None  # never refuses: a frame it cannot send is dropped

    def fileno(self) -> int:
        return self.fd

    def can_send(self) -> bool:
        return True

    def send(self, frame: bytes) -> bool:
        try:
            os.write(self.fd, frame)
        except OSError as e:
            self.dropped += 1
            if e.errno not in self.send_errors and e.errno != errno.EAGAIN:
                self.send_errors.add(e.errno or 0)
                import logging  # noqa: PLC0415 - only this error path logs

                logging.getLogger(__name__).warning(
                    "TAP device %s: cannot send (%s); dropping frames", self.name, e.strerror
                )
            return False
        return True

    def recv_frames(self) -> list[bytes]:
        frames: list[bytes] = []
        for _ in range(64):
            try:
                frames.append(os.read(self.fd, 65536))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        return frames

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_backend(spec: str) -> NetBackend | None:
    """`none`, `passt` or `tap:NAME` → a backend (None for no network)."""
    if spec == "none":
        return None
    if spec == "passt":
        return PasstBackend()
    if spec.startswith("tap:"):
        return TapBackend(spec[4:])
    raise NetBackendError(f"unknown network backend {spec!r} (use none, passt or tap:NAME)")
