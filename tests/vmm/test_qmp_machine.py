"""QMP end to end: the real `vmgui-vmm run --qmp` process on /dev/kvm, driven by the real
qemu.qmp client, with test guests from tests/guests/ proving what arrived inside the guest."""

from __future__ import annotations

import array
import asyncio
import contextlib
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import QMPClient

from tests.support import need_kvm
from tests.vmm.test_screendump import decode_png
from vmgui.vmm.devices.framebuffer import PAGE_SIZE

pytestmark = pytest.mark.kvm

FB_W, FB_H = 320, 200


class Vmm:
    """A vmgui-vmm process: serial output collected from stdout, QMP socket at `sock`."""

    def __init__(self, kernel: Path, tmp_path: Path, *extra: str) -> None:
        self.sock = str(tmp_path / "qmp.sock")
        cmd = [
            sys.executable,
            "-m",
            "vmgui.vmm",
            "run",
            "--kernel",
            str(kernel),
            "--qmp",
            self.sock,
        ]
        self.proc = subprocess.Popen(
            [*cmd, "--serial", "stdio", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out = b""
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: os.read(self.proc.stdout.fileno(), 4096), b""):  # type: ignore[union-attr]
            with self._cond:
                self.out += chunk
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while text.encode() not in self.out:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"guest never printed {text!r}; serial: {self.out!r}; {self.stderr()}"
                    )
                self._cond.wait(min(left, 0.2))

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return "stderr: " + self.proc.stderr.read().decode(errors="replace")

    async def client(self) -> QMPClient:
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"vmgui-vmm exited early: {self.stderr()}"
            assert time.monotonic() < deadline, "QMP socket never appeared"
            await asyncio.sleep(0.05)
        client = QMPClient("test")
        await client.connect(self.sock)
        return client

    def exit_status(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture
def start_vmm(build_guest: Any, tmp_path: Path) -> Iterator[Any]:
    need_kvm()
    started: list[Vmm] = []

    def start(guest: str, *extra: str) -> Vmm:
        vmm = Vmm(build_guest(guest), tmp_path, *extra)
        started.append(vmm)
        return vmm

    yield start
    for vmm in started:
        vmm.close()


def run(coro: Any, timeout: float = 90) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def disconnect(client: QMPClient) -> None:
    """Disconnect; after the VMM has ended, the client reports the closed socket: fine here."""
    with contextlib.suppress(EOFError, ConnectionError):
        await client.disconnect()


async def next_event(listener: Any, name: str, timeout: float = 20) -> dict[str, Any]:
    """The next event called `name` (others are skipped)."""
    while True:
        ev = await asyncio.wait_for(listener.get(), timeout)
        if ev["event"] == name:
            return dict(ev)


def fb_pixel(x: int, y: int) -> int:
    """Same formula as tests/guests/fb_pattern.c."""
    return (((x * 7 + y * 3) & 0xFF) << 16) | (((x ^ y) & 0xFF) << 8) | ((x + y * 5) & 0xFF)


def expected_rgb(pokes: dict[tuple[int, int], int]) -> bytes:
    rgb = bytearray()
    for y in range(FB_H):
        for x in range(FB_W):
            p = pokes.get((x, y), fb_pixel(x, y))
            rgb += bytes(((p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF))
    return bytes(rgb)


def bands_for_pixels(pixels: list[tuple[int, int]]) -> list[dict[str, int]]:
    """Damage for writes to these pixels: each one's 4 KiB page -> the rows that page touches."""
    stride = FB_W * 4
    rects = []
    for x, y in sorted(pixels, key=lambda p: p[1]):
        page = (y * stride + x * 4) // PAGE_SIZE
        y0, y1 = page * PAGE_SIZE // stride, -(-(page + 1) * PAGE_SIZE // stride)
        rects.append({"x": 0, "y": y0, "width": FB_W, "height": min(y1, FB_H) - y0})
    return rects


def recv_framebuffer(path: str) -> tuple[dict[str, Any], int]:
    """x-vmgui-framebuffer over a raw socket: the JSON reply and the memfd passed with it."""
    import json

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        f = s.makefile("rb")
        f.readline()  # greeting
        s.sendall(b'{"execute": "qmp_capabilities"}')
        f.readline()
        s.sendall(b'{"execute": "x-vmgui-framebuffer"}')
        data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(4))
        fds = [
            fd for lvl, kind, p in anc if kind == socket.SCM_RIGHTS for fd in array.array("i", p)
        ]
        assert len(fds) == 1, anc
        while not data.endswith(b"\n"):
            data += s.recv(65536)
        f.close()
        return json.loads(data)["return"], fds[0]


def test_framebuffer_screendump_dirty_log_and_shared_memfd(start_vmm: Any, tmp_path: Path) -> None:
    vmm = start_vmm(
        "fb_pattern", "--framebuffer", f"{FB_W}x{FB_H}", "--cmdline", f"fb={FB_W}x{FB_H}"
    )
    pokes = {(5, 10): 0xFF0000, (FB_W - 20, FB_H // 2): 0x00FF00}

    async def scenario() -> dict[str, Any]:
        client = await vmm.client()
        await asyncio.to_thread(vmm.wait_for, f"drawn {FB_W}x{FB_H}")
        ppm, png = tmp_path / "a.ppm", tmp_path / "a.png"
        await client.execute("screendump", {"filename": str(ppm)})
        await client.execute("screendump", {"filename": str(png), "format": "png"})
        header = b"P6\n%d %d\n255\n" % (FB_W, FB_H)
        assert ppm.read_bytes() == header + expected_rgb({}), "screendump differs from the pattern"
        assert decode_png(png.read_bytes()) == (FB_W, FB_H, expected_rgb({}))

        full = [{"x": 0, "y": 0, "width": FB_W, "height": FB_H}]
        assert await client.execute("x-vmgui-dirty") == full  # first call: the whole screen
        assert await client.execute("x-vmgui-dirty") == []  # the guest is idle, nothing new
        with client.listener() as listener:
            await client.execute("send-key", {"keys": [{"type": "qcode", "data": "spc"}]})
            await asyncio.to_thread(vmm.wait_for, "poked")
            assert await client.execute("x-vmgui-dirty") == bands_for_pixels(list(pokes))
            await client.execute("screendump", {"filename": str(ppm)})
            assert ppm.read_bytes() == header + expected_rgb(pokes)

            info, fd = await asyncio.to_thread(recv_framebuffer, vmm.sock)
            try:
                assert (info["width"], info["height"], info["stride"], info["format"]) == (
                    FB_W,
                    FB_H,
                    FB_W * 4,
                    "x8r8g8b8",
                )
                with mmap.mmap(fd, info["size"], mmap.MAP_SHARED, mmap.PROT_READ) as mm:
                    for (x, y), value in pokes.items():
                        off = y * info["stride"] + x * 4
                        assert int.from_bytes(mm[off : off + 4], "little") == value
                for size in (0, info["size"] * 2):  # sealed: a viewer cannot SIGBUS the VMM
                    with pytest.raises(PermissionError):
                        os.ftruncate(fd, size)
            finally:
                os.close(fd)

            await client.execute("send-key", {"keys": [{"type": "qcode", "data": "ret"}]})
            ev = await next_event(listener, "SHUTDOWN")
        await disconnect(client)
        return ev

    ev = run(scenario())
    assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert vmm.exit_status() == 0


def rows(rects: list[dict[str, int]]) -> set[int]:
    return {y for r in rects for y in range(r["y"], r["y"] + r["height"])}


def test_damage_events_are_pushed_only_when_the_guest_draws(start_vmm: Any) -> None:
    vmm = start_vmm(
        "fb_pattern", "--framebuffer", f"{FB_W}x{FB_H}", "--cmdline", f"fb={FB_W}x{FB_H}"
    )
    pokes = [(5, 10), (FB_W - 20, FB_H // 2)]

    async def scenario() -> None:
        client = await vmm.client()
        await asyncio.to_thread(vmm.wait_for, f"drawn {FB_W}x{FB_H}")
        with client.listener("X_VMGUI_DAMAGE") as damage:
            await client.execute("x-vmgui-damage-subscribe")
            first = await asyncio.wait_for(damage.get(), 10)
            assert first["data"]["rects"] == [{"x": 0, "y": 0, "width": FB_W, "height": FB_H}]
            with pytest.raises(TimeoutError):  # the guest is idle: nothing is sent
                await asyncio.wait_for(damage.get(), 0.5)
            await client.execute("send-key", {"keys": [{"type": "qcode", "data": "spc"}]})
            await asyncio.to_thread(vmm.wait_for, "poked")
            want = rows(bands_for_pixels(pokes))
            got: set[int] = set()
            while got != want:  # one event, or two if a poll fell between the guest's writes
                ev = await asyncio.wait_for(damage.get(), 10)
                got |= rows(ev["data"]["rects"])
                assert got <= want, ev
        await client.execute("quit")
        await disconnect(client)

    run(scenario())
    assert vmm.exit_status() == 0


# What `qemu-system-x86_64 -M microvm -device i8042` delivers to tests/guests/kbd_echo.c for the
# same send-key commands (recorded from QEMU 7.2 here): our VMM must match it byte for byte.
QEMU_REFERENCE = [
    0x2A, 0x1E, 0x9E, 0xAA,  # shift+a: make shift, make a, break a, break shift
    0xE0, 0x1C, 0xE0, 0x9C,  # kp_enter
    0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA,  # print
    0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5,  # pause (make only)
    0xE0, 0x53, 0xE0, 0xD3,  # number 0xd3 = delete
]  # fmt: skip
SENT: list[list[str | int]] = [
    ["shift", "a"],
    ["kp_enter"],
    ["print"],
    ["pause"],
    [0xD3],
]


def echoed(out: bytes) -> list[int]:
    """Bytes kbd_echo reported, from complete lines only (the last one may still be arriving)."""
    lines = out.decode().split("\n")[:-1]
    return [int(line.split()[1], 16) for line in lines if line.startswith("sc ")]


def test_send_key_arrives_as_qemu_set1_scancodes_and_pause_resume(start_vmm: Any) -> None:
    vmm = start_vmm("kbd_echo", "--framebuffer", "none")

    def key(k: str | int) -> dict[str, Any]:
        return {"type": "number", "data": k} if isinstance(k, int) else {"type": "qcode", "data": k}

    async def scenario() -> list[dict[str, Any]]:
        client = await vmm.client()
        await asyncio.to_thread(vmm.wait_for, "kbd ready")
        for keys in SENT:
            await client.execute("send-key", {"keys": [key(k) for k in keys], "hold-time": 20})
        deadline = time.monotonic() + 30
        while len(echoed(vmm.out)) < len(QEMU_REFERENCE) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert echoed(vmm.out) == QEMU_REFERENCE

        events = []
        with client.listener() as listener:
            await client.execute("stop")
            events.append(await next_event(listener, "STOP"))
            assert (await client.execute("query-status"))["status"] == "paused"
            down = {"type": "key", "data": {"down": True, "key": key("b")}}
            await client.execute("input-send-event", {"events": [down]})
            await asyncio.sleep(0.5)
            assert len(echoed(vmm.out)) == len(QEMU_REFERENCE), "a paused guest ran"
            await client.execute("cont")
            events.append(await next_event(listener, "RESUME"))
            await asyncio.to_thread(vmm.wait_for, "sc 0x00000030")  # b make, after resuming
            await client.execute("send-key", {"keys": [key("esc")]})
            events.append(await next_event(listener, "SHUTDOWN"))
        await disconnect(client)
        return events

    events = run(scenario())
    assert [e["event"] for e in events] == ["STOP", "RESUME", "SHUTDOWN"]
    assert events[2]["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert echoed(vmm.out)[-3:] == [0x30, 0x01, 0x81]
    assert vmm.exit_status() == 0


def test_system_powerdown_reaches_the_guest_then_shutdown(start_vmm: Any) -> None:
    vmm = start_vmm("power_button", "--framebuffer", "none")

    async def scenario() -> list[dict[str, Any]]:
        client = await vmm.client()
        await asyncio.to_thread(vmm.wait_for, "waiting for power button")
        with client.listener() as listener:
            await client.execute("system_powerdown")
            events = [
                await next_event(listener, "POWERDOWN"),
                await next_event(listener, "SHUTDOWN"),
            ]
        await disconnect(client)
        return events

    powerdown, shutdown = run(scenario())
    assert shutdown["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert b"power button" in vmm.out
    assert vmm.exit_status() == 0


def test_stats_cpus_and_quit_ends_the_vmm_with_shutdown_event(start_vmm: Any) -> None:
    vmm = start_vmm("kbd_echo", "--framebuffer", "none")

    async def scenario() -> dict[str, Any]:
        client = await vmm.client()
        await asyncio.to_thread(vmm.wait_for, "kbd ready")
        stats = await client.execute("x-vmgui-stats")
        assert stats["uptime"] > 0 and stats["rss"] > 0
        assert sum(stats["vcpus"][0]["exits"].values()) > 0  # the guest polls port 0x64
        assert stats["pio"]["reads"] > 0
        cpus = await client.execute("query-cpus-fast")
        assert [c["cpu-index"] for c in cpus] == [0] and cpus[0]["thread-id"] > 0
        with client.listener() as listener:
            await client.execute("quit")
            ev = await next_event(listener, "SHUTDOWN")
        await disconnect(client)
        return ev

    ev = run(scenario())
    assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert vmm.exit_status() == 0
    assert not os.path.exists(vmm.sock)
