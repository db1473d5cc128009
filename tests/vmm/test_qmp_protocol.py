"""Protocol-level tests of the QMP server: the real qemu.qmp client and raw sockets against
QmpServer. The machine behind it is a recording test double (allowed for protocol tests only);
end-to-end tests through the real VMM live in test_qmp_machine.py."""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import mmap
import os
import socket
import stat
import threading
import time
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import ExecuteError, QMPClient

from vmgui.vmm.control import VcpuInfo
from vmgui.vmm.devices.framebuffer import Framebuffer, Rect
from vmgui.vmm.qmp import MAX_QUEUED, QmpServer
from vmgui.vmm.unix_socket import bind_unix_socket


class FakeMachine:
    """Records what the server asked for; state changes like a real machine's would."""

    def __init__(self) -> None:
        self.state = "running"
        self.calls: list[str] = []
        self.key_events: list[bytes] = []
        self.key_times: list[float] = []
        self.fb = Framebuffer(64, 32)
        self.quit_event = threading.Event()
        self.broken = False

    def status(self) -> str:
        return self.state

    def pause(self) -> None:
        self.calls.append("pause")
        self.state = "paused"

    def settled(self) -> bool:
        return True

    def resume(self) -> None:
        self.calls.append("resume")
        self.state = "running"

    def powerdown(self) -> None:
        self.calls.append("powerdown")

    def reboot(self) -> None:
        self.calls.append("reboot")

    def reset(self) -> None:
        self.calls.append("reset")

    def quit(self) -> None:
        self.calls.append("quit")
        self.quit_event.set()

    def send_keys(self, scancodes: bytes) -> None:
        self.key_events.append(scancodes)
        self.key_times.append(time.monotonic())

    def screendump(self, path: str, fmt: str) -> None:
        self.fb.screendump(path, fmt)

    def cpus(self) -> list[VcpuInfo]:
        return [VcpuInfo(0, 1234), VcpuInfo(1, 1235)]

    def framebuffer(self) -> Framebuffer | None:
        return self.fb

    def dirty(self, consumer: Hashable) -> list[Rect]:
        return self.fb.take_damage(consumer)

    def stats(self) -> dict[str, Any]:
        if self.broken:
            raise RuntimeError("boom")
        return {"uptime": 1.5, "vcpus": [{"exits": {"io": 3}}]}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def connected(path: str) -> QMPClient:
    client = QMPClient("test")
    await client.connect(path)
    return client


class RawClient:
    """A line-oriented client for what qemu.qmp hides: greeting, pre-negotiation, bad JSON."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.fds: list[int] = []

    def recv(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    self.fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]

    def send(self, data: bytes | dict[str, Any]) -> None:
        self.sock.sendall(data if isinstance(data, bytes) else json.dumps(data).encode())

    def execute(self, cmd: str, **args: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.send(msg)
        while True:
            reply = self.recv()
            if "event" not in reply:
                return reply

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.sock.close()


@pytest.fixture
def raw(server: QmpServer) -> Iterator[RawClient]:
    c = RawClient(server.path)
    yield c
    c.close()


def test_greeting_and_negotiation_required(raw: RawClient) -> None:
    greeting = raw.recv()
    assert greeting["QMP"]["capabilities"] == []
    assert set(greeting["QMP"]["version"]["qemu"]) == {"major", "minor", "micro"}
    early = raw.execute("query-status")
    assert early["error"]["class"] == "CommandNotFound"
    assert "qmp_capabilities" in early["error"]["desc"]
    assert raw.execute("qmp_capabilities") == {"return": {}}
    again = raw.execute("qmp_capabilities")
    assert again["error"]["class"] == "CommandNotFound"
    assert raw.execute("query-status")["return"] == {
        "running": True,
        "singlestep": False,
        "status": "running",
    }


def test_malformed_input_gets_error_replies_and_server_survives(raw: RawClient) -> None:
    raw.recv()
    raw.send(b'{"execute": "qmp_capabilities"}{"execute": ')  # one good, one split across sends
    assert raw.recv() == {"return": {}}
    raw.send(b'"query-version", "id": 7}')
    reply = raw.recv()
    assert reply["id"] == 7 and reply["return"]["package"] == "vmgui-vmm"
    for bad in (b"{nonsense}", b"[1, 2]", b"}", b'{"arguments": {}}', b'{"execute": 5}', b"42\n"):
        raw.send(bad)
        assert raw.recv()["error"]["class"] == "GenericError", bad
    raw.send(b'{"execute": "no-such-command", "id": "x"}')
    reply = raw.recv()
    assert reply == {
        "error": {
            "class": "CommandNotFound",
            "desc": "The command no-such-command has not been found",
        },
        "id": "x",
    }
    raw.send(b'{"execute": "stop", "arguments": {"bogus": 1}, "id": [1]}')
    reply = raw.recv()
    assert reply["error"]["desc"] == "Parameter 'bogus' is unexpected" and reply["id"] == [1]
    raw.send(b'{"execute": "screendump", "arguments": {"filename": 5}}')
    assert "expected: string" in raw.recv()["error"]["desc"]
    raw.send(b'{"execute": "query-version", "id": "}{\\"[]"}')  # brackets inside a string
    assert raw.recv()["id"] == '}{"[]'
    raw.send(b'nonsense{"execute": "query-version", "id": 1}')  # garbage, then a good message
    assert raw.recv()["error"]["class"] == "GenericError"
    assert raw.recv()["id"] == 1
    assert raw.execute("query-status")["return"]["status"] == "running"


def test_an_over_long_message_is_answered_then_the_client_is_closed(
    raw: RawClient, server: QmpServer
) -> None:
    """The reader resynchronised inside a runaway text and read its tail as new requests:
    a client's next messages were silently lost or misread. It must hang up instead."""
    raw.recv()
    raw.execute("qmp_capabilities")
    with contextlib.suppress(BrokenPipeError):  # the server may hang up before we are done
        raw.send(b'{"execute": "x", "id": "' + b"a" * (2 << 20))  # runaway: never terminated
        raw.send(b'"}{"execute": "query-status"}')
    assert "too long" in raw.recv()["error"]["desc"]
    with pytest.raises((EOFError, ConnectionResetError)):  # no reply to the text after it
        raw.recv()
    deep = RawClient(server.path)
    try:
        deep.recv()
        deep.execute("qmp_capabilities")
        with contextlib.suppress(BrokenPipeError):
            deep.send(b"[" * 2000 + b"]" * 2000 + b'{"execute": "query-status"}')
        assert "too deep" in deep.recv()["error"]["desc"]
        with pytest.raises((EOFError, ConnectionResetError)):
            deep.recv()
    finally:
        deep.close()


def test_socket_mode_stale_socket_and_refusals(tmp_path: Path, machine: FakeMachine) -> None:
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on: what a crashed VMM leaves behind
    srv = QmpServer(machine, path)
    srv.start_thread()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(OSError, match="in use"):
            bind_unix_socket(str(path))
        assert [p.name for p in tmp_path.iterdir()] == ["s.sock"]  # no temp leftovers
    finally:
        srv.stop_thread()
    assert not path.exists()
    regular = tmp_path / "file"
    regular.write_text("user data")
    with pytest.raises(OSError, match="not a socket"):
        bind_unix_socket(str(regular))
    assert regular.read_text() == "user data"


def test_run_control_and_events_with_qemu_qmp(server: QmpServer, machine: FakeMachine) -> None:
    async def scenario() -> list[tuple[str, Any]]:
        client = await connected(server.path)
        seen: list[tuple[str, Any]] = []
        with client.listener() as listener:
            assert await client.execute("stop") == {}
            status: Any = await client.execute("query-status")
            assert status["status"] == "paused"
            assert await client.execute("stop") == {}  # already paused: no second STOP
            assert await client.execute("cont") == {}
            assert await client.execute("system_powerdown") == {}
            assert await client.execute("x-vmgui-reboot") == {}
            assert await client.execute("system_reset") == {}
            server.emit("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})  # machine side
            while len(seen) < 6:
                ev: Any = await asyncio.wait_for(listener.get(), 5)
                seen.append((ev["event"], ev.get("data")))
                ts = ev["timestamp"]
                assert abs(ts["seconds"] + ts["microseconds"] / 1e6 - time.time()) < 10
        await client.disconnect()
        return seen

    seen = run(scenario())
    assert seen == [
        ("STOP", None),
        ("RESUME", None),
        ("POWERDOWN", None),
        ("POWERDOWN", None),  # x-vmgui-reboot presses the same button
        ("RESET", {"guest": False, "reason": "host-qmp-system-reset"}),
        ("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"}),
    ]
    assert machine.calls == ["pause", "resume", "powerdown", "reboot", "reset"]


def test_emit_from_another_thread_reaches_every_client(server: QmpServer) -> None:
    async def scenario() -> list[str]:
        a, b = await connected(server.path), await connected(server.path)
        got: list[str] = []
        with a.listener() as la, b.listener() as lb:
            t = threading.Thread(
                target=server.emit, args=("RESET", {"guest": True, "reason": "guest-reset"})
            )
            t.start()
            t.join()
            for listener in (la, lb):
                ev: Any = await asyncio.wait_for(listener.get(), 5)
                got.append(ev["event"])
        await a.disconnect()
        await b.disconnect()
        return got

    assert run(scenario()) == ["RESET", "RESET"]


def test_quit_replies_then_shutdown_event(server: QmpServer, machine: FakeMachine) -> None:
    async def scenario() -> Any:
        client = await connected(server.path)
        with client.listener() as listener:
            assert await client.execute("quit") == {}
            ev = await asyncio.wait_for(listener.get(), 5)
        await client.disconnect()
        return ev

    ev = run(scenario())
    assert ev["event"] == "SHUTDOWN" and ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert machine.quit_event.wait(5)


def test_cont_after_shutdown_is_refused(server: QmpServer, machine: FakeMachine) -> None:
    machine.state = "shutdown"

    async def scenario() -> str:
        client = await connected(server.path)
        try:
            await client.execute("cont")
        except ExecuteError as e:
            return str(e.error_class)
        finally:
            await client.disconnect()
        return "no error"

    assert run(scenario()) == "GenericError"
    assert machine.calls == []


def test_send_key_holds_then_releases_in_reverse(server: QmpServer, machine: FakeMachine) -> None:
    async def scenario() -> None:
        client = await connected(server.path)
        keys = [
            {"type": "qcode", "data": "ctrl"},
            {"type": "qcode", "data": "alt"},
            {"type": "number", "data": 0xD3},
        ]
        await client.execute("send-key", {"keys": keys, "hold-time": 150})
        with pytest.raises(ExecuteError, match="not a QEMU key name"):
            await client.execute("send-key", {"keys": [{"type": "qcode", "data": "nope"}]})
        with pytest.raises(ExecuteError, match="keys"):
            await client.execute("send-key", {"keys": []})
        await client.disconnect()

    run(scenario())
    deadline = time.monotonic() + 5
    while len(machine.key_times) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    # ctrl, alt, delete (number 0xd3 = E0 53) down; after the hold, up in reverse order;
    # one send_keys() call per key event, as I8042.key_event() wants them.
    assert machine.key_events == [
        b"\x14",
        b"\x11",
        b"\xe0\x71",
        b"\xe0\xf0\x71",
        b"\xf0\x11",
        b"\xf0\x14",
    ]
    assert machine.key_times[3] - machine.key_times[2] >= 0.14


def test_input_send_event_keys_and_pointer_refusal(server: QmpServer, machine: FakeMachine) -> None:
    async def scenario() -> None:
        client = await connected(server.path)
        events = [
            {"type": "key", "data": {"down": True, "key": {"type": "qcode", "data": "a"}}},
            {"type": "key", "data": {"down": False, "key": {"type": "qcode", "data": "a"}}},
        ]
        await client.execute("input-send-event", {"events": events})
        with pytest.raises(ExecuteError, match="no pointing device"):
            await client.execute(
                "input-send-event",
                {"events": [{"type": "btn", "data": {"down": True, "button": "left"}}]},
            )
        with pytest.raises(ExecuteError, match="down"):
            await client.execute(
                "input-send-event",
                {"events": [{"type": "key", "data": {"key": {"type": "qcode", "data": "a"}}}]},
            )
        await client.disconnect()

    run(scenario())
    deadline = time.monotonic() + 5
    while len(machine.key_events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert machine.key_events == [b"\x1c", b"\xf0\x1c"]


def test_screendump_ppm_png_and_errors(
    server: QmpServer, machine: FakeMachine, tmp_path: Path
) -> None:
    px = machine.fb.pixels()
    px[0:4] = bytes([0x30, 0x20, 0x10, 0])  # pixel (0,0) = RGB 10 20 30

    async def scenario() -> None:
        client = await connected(server.path)
        await client.execute("screendump", {"filename": str(tmp_path / "a.ppm")})
        await client.execute("screendump", {"filename": str(tmp_path / "a.png"), "format": "png"})
        with pytest.raises(ExecuteError, match="failed to write"):
            await client.execute("screendump", {"filename": str(tmp_path / "missing" / "x.ppm")})
        with pytest.raises(ExecuteError, match="format"):
            await client.execute("screendump", {"filename": str(tmp_path / "b"), "format": "bmp"})
        await client.disconnect()

    run(scenario())
    ppm = (tmp_path / "a.ppm").read_bytes()
    assert ppm.startswith(b"P6\n64 32\n255\n\x10\x20\x30")
    assert len(ppm) == len(b"P6\n64 32\n255\n") + 64 * 32 * 3
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")


def test_framebuffer_fd_passing_and_per_client_damage(
    server: QmpServer, machine: FakeMachine
) -> None:
    a, b = RawClient(server.path), RawClient(server.path)
    try:
        for c in (a, b):
            c.recv()
            c.execute("qmp_capabilities")
        info = a.execute("x-vmgui-framebuffer")["return"]
        assert info == {
            "width": 64,
            "height": 32,
            "stride": 256,
            "format": "x8r8g8b8",
            "size": 8192,
            "base": 0xE000_0000,
        }
        assert len(a.fds) == 1
        with mmap.mmap(a.fds[0], info["size"], mmap.MAP_SHARED, mmap.PROT_READ) as mm:
            machine.fb.pixels()[256 * 5 : 256 * 5 + 4] = b"\x01\x02\x03\x00"
            assert mm[256 * 5 : 256 * 5 + 4] == b"\x01\x02\x03\x00"  # the same pages, no copy
        full = [{"x": 0, "y": 0, "width": 64, "height": 32}]
        assert a.execute("x-vmgui-dirty")["return"] == full  # a new consumer sees everything once
        assert a.execute("x-vmgui-dirty")["return"] == []
        machine.fb.add_dirty_log(bytes([0b10]))  # page 1 = rows 16..31
        assert a.execute("x-vmgui-dirty")["return"] == [
            {"x": 0, "y": 16, "width": 64, "height": 16}
        ]
        assert b.execute("x-vmgui-dirty")["return"] == full  # b's damage was not taken by a
        assert a.execute("x-vmgui-stats")["return"]["uptime"] == 1.5
        cpus = a.execute("query-cpus-fast")["return"]
        assert [(c["cpu-index"], c["thread-id"]) for c in cpus] == [(0, 1234), (1, 1235)]
        names = {c["name"] for c in a.execute("query-commands")["return"]}
        assert {"send-key", "screendump", "x-vmgui-framebuffer", "qmp_capabilities"} <= names
    finally:
        a.close()
        b.close()


def test_client_disconnect_mid_command_and_many_clients(server: QmpServer) -> None:
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(server.path)
        s.sendall(b'{"execute": "qmp_capab')
        s.close()
    c = RawClient(server.path)
    try:
        c.recv()
        assert c.execute("qmp_capabilities") == {"return": {}}
    finally:
        c.close()


def test_a_failing_machine_call_is_an_error_reply_not_a_dead_server(
    raw: RawClient, machine: FakeMachine
) -> None:
    raw.recv()
    raw.execute("qmp_capabilities")
    machine.broken = True
    reply = raw.execute("x-vmgui-stats")
    assert reply["error"] == {"class": "GenericError", "desc": "internal error: boom"}
    machine.broken = False
    assert raw.execute("x-vmgui-stats")["return"]["uptime"] == 1.5


def test_a_client_that_never_reads_is_hung_up_on(server: QmpServer) -> None:
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(server.path)
    stuck.sendall(b'{"execute": "qmp_capabilities"}')
    time.sleep(0.2)
    padding = "x" * 1024  # 1 KiB events: far more than the socket buffers hold
    for _ in range(2 * MAX_QUEUED):
        server.emit("RESET", {"guest": True, "reason": padding})
    stuck.settimeout(10)
    received = 0
    while chunk := stuck.recv(1 << 16):  # drains what was sent, then sees the hang-up (EOF)
        received += len(chunk)
    stuck.close()
    assert 0 < received < 2 * MAX_QUEUED * 1024
    c = RawClient(server.path)  # everyone else is still served
    try:
        c.recv()
        assert c.execute("qmp_capabilities") == {"return": {}}
    finally:
        c.close()


def test_damage_is_pushed_to_subscribers_and_nothing_while_still(
    server: QmpServer, machine: FakeMachine
) -> None:
    """A console polling x-vmgui-dirty costs CPU while the screen is still; subscribers get
    X_VMGUI_DAMAGE only when pixels changed (the first event covers the whole screen)."""
    sub, other = RawClient(server.path), RawClient(server.path)
    try:
        for c in (sub, other):
            c.recv()
            c.execute("qmp_capabilities")
        assert sub.execute("x-vmgui-damage-subscribe") == {"return": {}}
        first = sub.recv()
        assert first["event"] == "X_VMGUI_DAMAGE"
        assert first["data"] == {"rects": [{"x": 0, "y": 0, "width": 64, "height": 32}]}
        sub.sock.settimeout(0.3)  # still screen: > 15 rounds at 60 Hz, and no event
        with pytest.raises(TimeoutError):
            sub.recv()
        sub.sock.settimeout(10)
        machine.fb.add_dirty_log(bytes([0b10]))  # what the dirty log reports for rows 16..31
        ev = sub.recv()
        assert ev["data"] == {"rects": [{"x": 0, "y": 16, "width": 64, "height": 16}]}
        other.sock.settimeout(0.2)  # not subscribed: no events
        with pytest.raises(TimeoutError):
            other.recv()
        assert sub.execute("x-vmgui-damage-subscribe", enable=False) == {"return": {}}
        machine.fb.add_dirty_log(bytes([0b1]))
        sub.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sub.recv()
    finally:
        sub.close()
        other.close()


def test_commands_see_the_control_interface_not_the_server() -> None:
    """qmp.py and qmp_commands.py imported each other and every handler got the whole server;
    now the commands depend only on the narrow VmControl (and the wire format)."""
    import ast

    import vmgui.vmm.qmp_commands as commands

    tree = ast.parse(Path(commands.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "vmgui.vmm.qmp" not in imported
    assert "vmgui.vmm.machine" not in imported and "vmgui.vmm.runtime" not in imported
