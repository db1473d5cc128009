"""The serial console's host side: sinks, the unix: endpoint viewers attach to, bounded buffers."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import need_kvm
from tests.vmm.vmm_process import start_vmm, stop_vmm
from vmgui.vmm.config import SerialSink
from vmgui.vmm.errors import VmmError
from vmgui.vmm.serial_console import MAX_PENDING, REPLAY_BYTES, SerialConsole


class Uart:
    """Stands in for Serial.enqueue_input: takes at most `room` bytes per call."""

    def __init__(self, room: int = 64) -> None:
        self.room = room
        self.got = bytearray()
        self.cond = threading.Condition()

    def enqueue_input(self, data: bytes) -> int:
        with self.cond:
            n = min(len(data), self.room)
            self.got += data[:n]
            self.cond.notify_all()
            return n

    def wait_for(self, data: bytes, timeout: float = 5) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: data in self.got, timeout), bytes(self.got)


def recv_until(sock: socket.socket, marker: bytes, timeout: float = 5) -> bytes:
    sock.settimeout(timeout)
    seen = b""
    while marker not in seen:
        chunk = sock.recv(65536)
        assert chunk, f"viewer hung up on; saw {seen[-200:]!r}"
        seen += chunk
    return seen


@pytest.fixture
def console(tmp_path: Path) -> Iterator[SerialConsole]:
    c = SerialConsole((SerialSink("unix", str(tmp_path / "serial.sock")),), lambda: None)
    c.start()
    yield c
    c.close()


def viewer(tmp_path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(tmp_path / "serial.sock"))
    return s


def test_unix_endpoint_replays_boot_output_and_serves_several_viewers(
    console: SerialConsole, tmp_path: Path
) -> None:
    path = tmp_path / "serial.sock"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    uart = Uart(room=4)
    console.attach(uart.enqueue_input)
    console.out(b"boot messages\n")
    late = viewer(tmp_path)  # attaches after the output: still sees it
    assert recv_until(late, b"boot messages\n") == b"boot messages\n"
    second = viewer(tmp_path)
    recv_until(second, b"boot messages\n")
    console.out(b"login: ")
    assert recv_until(late, b"login: ") == b"login: "
    assert recv_until(second, b"login: ") == b"login: "
    late.sendall(b"root\n")  # more than the UART takes at once: fed as it drains
    uart.wait_for(b"root")
    uart.room = 64
    console.rx_ready()  # what Serial's on_rx_empty does once the guest read its FIFO
    uart.wait_for(b"root\n")
    second.sendall(b"x")
    uart.wait_for(b"root\nx")
    late.close()  # a viewer leaves: the VM and the other viewer go on
    console.out(b"still here\n")
    assert recv_until(second, b"still here\n") == b"still here\n"
    second.close()
    again = viewer(tmp_path)
    assert recv_until(again, b"still here\n").startswith(b"boot messages\nlogin: ")
    again.close()


def test_replay_keeps_only_the_most_recent_output(console: SerialConsole, tmp_path: Path) -> None:
    console.out(b"A" * REPLAY_BYTES)
    console.out(b"B" * 100 + b"end")
    time.sleep(0.2)
    v = viewer(tmp_path)
    seen = recv_until(v, b"end")
    assert len(seen) == REPLAY_BYTES and seen.endswith(b"B" * 100 + b"end")
    v.close()


def test_a_stalled_viewer_never_blocks_the_guest(console: SerialConsole, tmp_path: Path) -> None:
    stuck = viewer(tmp_path)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    spent = 0.0
    for _ in range(64):  # 4 MiB in all: far more than any buffer on the way
        started = time.monotonic()
        console.out(b"x" * 65536)
        spent += time.monotonic() - started
        time.sleep(0.005)  # let the serial thread hand it on
    assert spent < 0.5
    stuck.settimeout(5)
    received = 0
    with pytest.raises(ConnectionResetError):  # hung up on once its backlog was full
        while chunk := stuck.recv(65536):
            received += len(chunk)
        raise ConnectionResetError  # EOF after the data sent before the hang-up
    assert received < 4 << 20
    stuck.close()


def test_output_beyond_the_pending_limit_is_dropped_and_counted(tmp_path: Path) -> None:
    c = SerialConsole((), lambda: None)  # thread not started: nothing drains the buffer
    try:
        c.out(b"x" * MAX_PENDING)
        c.out(b"lost")
        assert c.dropped == 4
    finally:
        c.close()


def test_file_sink_stops_at_its_limit(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    c = SerialConsole((SerialSink("file", str(log)),), lambda: None, max_file_bytes=1000)
    c.start()
    try:
        for _ in range(50):
            c.out(b"y" * 100)
    finally:
        c.close()
    text = log.read_bytes()
    assert text.startswith(b"y" * 1000 + b"\n[vmgui-vmm: serial output stops here")
    assert len(text) < 1200


def test_sinks_combine_and_errors_are_one_line(tmp_path: Path) -> None:
    assert SerialSink.parse_all(None) == (SerialSink("stdio"),)
    assert SerialSink.parse_all(["none"]) == ()
    assert SerialSink.parse_all(["file:/x", "unix:/y"]) == (
        SerialSink("file", "/x"),
        SerialSink("unix", "/y"),
    )
    with pytest.raises(VmmError, match="cannot be combined"):
        SerialSink.parse_all(["none", "stdio"])
    with pytest.raises(VmmError, match="given twice"):
        SerialSink.parse_all(["unix:/a", "unix:/b"])
    regular = tmp_path / "taken"
    regular.write_text("")
    with pytest.raises(VmmError, match=r"^--serial unix:.*exists and is not a socket$"):
        SerialConsole((SerialSink("unix", str(regular)),), lambda: None)


def test_the_vmm_serves_its_console_to_viewers_that_come_and_go(
    build_guest: Any, tmp_path: Path
) -> None:
    """What the GUI does: start the VMM detached with no stdio console, attach a terminal to
    the serial socket later (it must see the boot messages), type, leave, come back."""
    need_kvm()
    sock = tmp_path / "serial.sock"
    proc = start_vmm("--kernel", build_guest("echo"), "--serial", f"unix:{sock}")
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.02)
        time.sleep(0.3)  # the guest prints "ready" with nobody attached
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first.connect(str(sock))
        recv_until(first, b"ready", timeout=20)
        first.sendall(b"a")
        recv_until(first, b"<a>", timeout=20)
        first.close()
        second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        second.connect(str(sock))
        assert b"ready" in recv_until(second, b"<a>")  # the replay again
        second.sendall(b"q")  # the guest powers off
        assert proc.wait(20) == 0
        second.close()
        assert not sock.exists()  # removed on the way out
        assert proc.stdout is not None and proc.stdout.read() == b""  # stdio was not asked for
    finally:
        stop_vmm(proc)


def _thread_cpu(stat_fd: int) -> float:
    fields = os.pread(stat_fd, 4096, 0).decode().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_running_out_of_fds_neither_spins_nor_ends_the_viewer_endpoint(
    console: SerialConsole, tmp_path: Path
) -> None:
    """accept() failing with EMFILE left the listener readable, so the serial thread spun at
    100% CPU (holding the GIL against the vCPUs) until fds were free again."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert console._thread is not None and console._thread.native_id is not None
    stat_fd = os.open(f"/proc/self/task/{console._thread.native_id}/stat", os.O_RDONLY)
    fillers: list[int] = []
    child = -1
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        with contextlib.suppress(OSError):
            while True:  # every fd of this process in use
                fillers.append(os.dup(stat_fd))
        child = os.fork()
        if child == 0:  # a viewer from another process: its connection waits to be accepted
            try:
                for fd in fillers:
                    os.close(fd)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(tmp_path / "serial.sock"))
                time.sleep(3)
            finally:
                os._exit(0)
        time.sleep(0.2)
        before = _thread_cpu(stat_fd)
        time.sleep(1.0)
        assert _thread_cpu(stat_fd) - before < 0.1  # not spinning on the pending connection
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        os.close(stat_fd)
        if child > 0:
            os.waitpid(child, 0)
    console.out(b"back\n")
    v = viewer(tmp_path)
    assert recv_until(v, b"back\n").endswith(b"back\n")
    v.close()
