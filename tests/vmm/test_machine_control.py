"""Machine control through QMP (real qemu.qmp client, real vmgui-vmm process, /dev/kvm):
pause/resume really stops the vCPUs, guest power events become QMP events, exits are counted."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from tests.support import need_kvm, need_tool
from tests.vmm.vmm_process import read_until, start_vmm, stop_vmm

Build = Callable[..., Path]


async def connect(sock: Path) -> QMPClient:
    deadline = time.monotonic() + 20
    while not sock.exists():
        assert time.monotonic() < deadline, "QMP socket never appeared"
        await asyncio.sleep(0.02)
    client = QMPClient("test")
    await client.connect(str(sock))
    return client


async def next_event(listener: Any, name: str, timeout: float = 20) -> dict[str, Any]:
    while True:
        ev = await asyncio.wait_for(listener.get(), timeout)
        if ev["event"] == name:
            return dict(ev)


def test_pause_stops_the_guest_and_resume_continues(build_guest: Build, tmp_path: Path) -> None:
    need_kvm()
    sock = tmp_path / "qmp.sock"
    proc = start_vmm("--kernel", build_guest("ticker"), "--qmp", sock)
    assert proc.stdout is not None

    def drain() -> bytes:
        with contextlib.suppress(BlockingIOError):
            return os.read(proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
        return b""

    async def scenario() -> None:
        read_until(proc, b"tick 1\n")
        client = await connect(sock)
        try:
            await client.execute("stop")
            assert (await client.execute("query-status"))["status"] == "paused"
            drain()
            stats = await client.execute("x-vmgui-stats")
            await asyncio.sleep(0.6)
            assert drain() == b"", "the guest kept printing while paused"
            assert (await client.execute("x-vmgui-stats"))["vcpus"] == stats["vcpus"]
            await client.execute("cont")
            assert (await client.execute("query-status"))["status"] == "running"
            read_until(proc, b"tick", timeout=20)
            stats = await client.execute("x-vmgui-stats")
            assert stats["vcpus"][0]["exits"]["IO"] > 100
            assert stats["pio"]["unhandled"]["0x80"] > 100  # the delay port: counted, not fatal
            await client.execute("quit")
        finally:
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()
        assert proc.wait(10) == 0

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        stop_vmm(proc)


def test_guest_poweroff_emits_shutdown_and_exits_zero(build_guest: Build, tmp_path: Path) -> None:
    need_kvm()
    sock = tmp_path / "qmp.sock"
    proc = start_vmm("--kernel", build_guest("ticker"), "--qmp", sock)

    async def scenario() -> dict[str, Any]:
        client = await connect(sock)
        try:
            with client.listener() as listener:
                read_until(proc, b"tick 0\n")
                assert proc.stdin is not None
                proc.stdin.write(b"x")  # any byte: the ticker powers off via ACPI S5
                proc.stdin.flush()
                return await next_event(listener, "SHUTDOWN")
        finally:
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()

    try:
        event = asyncio.run(asyncio.wait_for(scenario(), 60))
        assert event["data"] == {"guest": True, "reason": "guest-shutdown"}
        assert proc.wait(10) == 0
    finally:
        stop_vmm(proc)


def test_system_reset_emits_reset_and_reboots(build_guest: Build, tmp_path: Path) -> None:
    need_kvm()
    sock = tmp_path / "qmp.sock"
    proc = start_vmm("--on-reboot", "restart", "--kernel", build_guest("ticker"), "--qmp", sock)

    async def scenario() -> dict[str, Any]:
        client = await connect(sock)
        try:
            with client.listener() as listener:
                read_until(proc, b"tick 0\n")
                await client.execute("system_reset")
                host = await next_event(listener, "RESET")
                read_until(proc, b"tick 0\n")  # booted again from the start
                assert (await client.execute("query-status"))["status"] == "running"
                return host
        finally:
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()

    try:
        event = asyncio.run(asyncio.wait_for(scenario(), 60))
        assert event["data"]["guest"] is False
    finally:
        assert stop_vmm(proc) == 0


def test_reboot_asks_the_guest_and_starts_it_again_when_it_powers_off(
    build_guest: Build, tmp_path: Path
) -> None:
    """x-vmgui-reboot (the built-in backend's Reboot): the guest hears the power button and
    powers off cleanly; the VMM then starts it afresh instead of ending, as libvirt's reboot
    does. The next power-off ends the VM as usual."""
    need_kvm()
    sock = tmp_path / "qmp.sock"
    proc = start_vmm("--kernel", build_guest("power_button"), "--qmp", sock)

    async def scenario() -> list[dict[str, Any]]:
        client = await connect(sock)
        try:
            with client.listener() as listener:
                read_until(proc, b"waiting for power button\n")
                await client.execute("x-vmgui-reboot")
                events = [await next_event(listener, "POWERDOWN")]
                events.append(await next_event(listener, "RESET"))
                read_until(proc, b"waiting for power button\n")  # booted again
                assert (await client.execute("query-status"))["status"] == "running"
                await client.execute("system_powerdown")
                events.append(await next_event(listener, "SHUTDOWN"))
                return events
        finally:
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()

    try:
        _, reset, shutdown = asyncio.run(asyncio.wait_for(scenario(), 60))
        assert reset["data"] == {"guest": True, "reason": "guest-shutdown"}
        assert shutdown["data"] == {"guest": True, "reason": "guest-shutdown"}
        assert proc.wait(10) == 0
    finally:
        stop_vmm(proc)


def test_terminal_escape_quits_and_restores_the_terminal(build_guest: Build) -> None:
    """On a terminal the console is raw (keys go to the guest); Ctrl-A x ends the VMM."""
    need_kvm()
    import pty
    import termios

    from tests.vmm.vmm_process import VMM, vmm_env

    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    import subprocess

    proc = subprocess.Popen(
        [*VMM, "run", "--framebuffer", "none", "--kernel", str(build_guest("echo"))],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=vmm_env(),
    )
    try:
        seen = b""
        deadline = time.monotonic() + 20
        while b"ready" not in seen and time.monotonic() < deadline:
            seen += os.read(master, 4096)
        assert b"ready" in seen
        os.write(master, b"a")  # reaches the guest (raw mode: no line buffering)
        while b"<a>" not in seen and time.monotonic() < deadline:
            seen += os.read(master, 4096)
        os.write(master, b"\x01x")  # Ctrl-A x is for the VMM, never the guest
        assert proc.wait(10) == 0
        assert termios.tcgetattr(slave) == before
        os.set_blocking(master, False)
        with contextlib.suppress(BlockingIOError, OSError):
            seen += os.read(master, 4096)
        assert b"<a>" in seen and b"<x>" not in seen and b"<\x01>" not in seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        os.close(master)
        os.close(slave)


def test_pause_and_quit_reach_a_vcpu_blocked_in_the_kernel(
    build_guest: Build, tmp_path: Path
) -> None:
    """vCPU 1 never gets a SIPI, so it sits inside KVM_RUN for good: the kick must still stop
    it for `stop`, and `quit` while paused must end the process (no stuck thread, no zombie)."""
    need_kvm()
    sock = tmp_path / "qmp.sock"
    proc = start_vmm("--cpus", "2", "--kernel", build_guest("ticker"), "--qmp", sock)

    async def scenario() -> None:
        read_until(proc, b"tick 0\n")
        client = await connect(sock)
        try:
            await client.execute("stop")
            assert (await client.execute("query-status"))["status"] == "paused"
            assert len(await client.execute("query-cpus-fast")) == 2
            await client.execute("quit")
        finally:
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
        started = time.monotonic()
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
    finally:
        stop_vmm(proc)


def test_sigterm_ends_the_vmm_at_once_while_nobody_reads_the_serial_output(
    build_guest: Build, tmp_path: Path
) -> None:
    """The vCPU wrote serial output straight to stdout: with a reader that stopped reading it
    blocked in write(), `stop` timed out, teardown closed its fds under it and SIGTERM took
    10 s. The guest must keep running, QMP must answer, SIGTERM must end the VMM in < 1 s."""
    need_kvm()
    sock = tmp_path / "qmp.sock"
    proc = start_vmm("--kernel", build_guest("flood"), "--qmp", sock)
    assert proc.stdout is not None
    fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)  # fills after ~300 lines

    async def scenario() -> None:
        read_until(proc, b"flood 1\n")  # then never read again
        client = await connect(sock)
        try:
            exits = 0
            for _ in range(3):  # the guest keeps running (its output is dropped, not waited for)
                await asyncio.sleep(0.3)
                stats = await client.execute("x-vmgui-stats")
                assert stats["vcpus"][0]["exits"]["IO"] > exits
                exits = stats["vcpus"][0]["exits"]["IO"]
            for cmd in ("stop", "query-status", "cont", "query-status"):
                started = time.monotonic()
                await client.execute(cmd)
                assert time.monotonic() - started < 0.1, cmd
        finally:
            await client.disconnect()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
        started = time.monotonic()
        proc.terminate()
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 1.0
    finally:
        stop_vmm(proc)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def test_a_stopped_passt_stalls_neither_the_guest_nor_qmp_nor_shutdown(
    build_guest: Build, tmp_path: Path
) -> None:
    """With passt alive but not reading, the device's I/O thread used to block in sendall
    holding the transport lock, the guest's vCPU blocked on that lock, QMP stop waited 5 s for
    the vCPU and quit hung for good. Now frames queue for the backend's writer thread; once that
    queue is full the guest just sees a full transmit queue and keeps running, and its frames
    flow again when passt does."""
    need_kvm()
    need_tool("passt")
    sock = tmp_path / "qmp.sock"
    guest = build_guest("virtio_guest")
    proc = start_vmm(
        "--kernel", guest, "--cmdline", "vt=net-flood", "--net", "passt", "--no-rng",
        "--qmp", sock,
    )  # fmt: skip
    passt = -1

    async def scenario() -> None:
        nonlocal passt
        read_until(proc, b"net flooding\n")
        [passt] = _children(proc.pid)
        client = await connect(sock)

        async def counters() -> tuple[int, int]:
            """(bytes the guest sent, registers it read): the net graph's and the vCPU's."""
            stats = await client.execute("x-vmgui-stats")
            return stats["net"]["tx_bytes"], stats["mmio"]["reads"]

        async def until_sent_stalls() -> None:
            """Until passt's socket and our send queue are full: tx_bytes stops moving (for
            two polls in a row, so a guest that was merely descheduled does not count)."""
            sent, still, deadline = -1, 0, time.monotonic() + 30
            while still < 2:
                await asyncio.sleep(0.3)
                now, _ = await counters()
                still = still + 1 if now == sent else 0
                assert time.monotonic() < deadline, "frames never stopped flowing"
                sent = now

        try:
            assert (await counters())[0] > 0  # frames flow while passt reads
            os.kill(passt, signal.SIGSTOP)
            await until_sent_stalls()
            sent, reads = await counters()
            await asyncio.sleep(0.5)
            sent_later, reads_later = await counters()
            assert sent_later == sent  # nothing goes out while passt sleeps...
            assert reads_later > reads, "the guest's vCPU is stuck in the network device"
            for cmd in ("query-status", "stop", "query-status", "cont", "query-status"):
                started = time.monotonic()
                await client.execute(cmd)
                assert time.monotonic() - started < 0.1, cmd
            os.kill(passt, signal.SIGCONT)
            deadline = time.monotonic() + 20
            while (await counters())[0] == sent:  # ...and the guest's frames go out again
                assert time.monotonic() < deadline, "frames did not flow again after SIGCONT"
                await asyncio.sleep(0.1)
            os.kill(passt, signal.SIGSTOP)
            await until_sent_stalls()
            started = time.monotonic()
            await client.execute("stop")
            assert time.monotonic() - started < 0.1, "stop"
            started = time.monotonic()
            await client.execute("quit")
            assert proc.wait(5) == 0
            assert time.monotonic() - started < 1.0
        finally:
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        stop_vmm(proc)
        if passt > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(passt, signal.SIGKILL)
