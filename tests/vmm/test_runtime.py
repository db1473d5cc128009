"""The run-time controller through the real QMP client, with a vCPU stuck in a device call.

The stuck device stands in for any backend that stops answering (a stalled reader, a stopped
passt): it blocks the vCPU that touched it until the test lets it go.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qemu.qmp import QMPClient

from tests.support import need_kvm
from tests.vmm.vmm_process import run_vmm
from vmgui.vmm import cli
from vmgui.vmm.config import MachineConfig
from vmgui.vmm.machine import Machine
from vmgui.vmm.qmp import QmpServer
from vmgui.vmm.vcpu import install_kick_handler

pytestmark = pytest.mark.kvm

#: tests/guests/portbench.c's port; built to write it (practically) forever.
BENCH_PORT = 0x5F0
#: What QMP must answer within whatever the guest or a backend does (issue: control plane).
ANSWER_WITHIN = 0.1


class StuckDevice:
    """A port device whose first write blocks until `release` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def read(self, offset: int, size: int) -> int:
        return 0xFF

    def write(self, offset: int, size: int, value: int) -> None:
        self.entered.set()
        self.release.wait()


@pytest.fixture
def stuck(build_guest: Callable[..., Path]) -> Iterator[tuple[Machine, StuckDevice]]:
    need_kvm()
    install_kick_handler()
    elf = build_guest("portbench", ("-DPORTBENCH_COUNT=2000000000",))
    m = Machine(MachineConfig(kernel=str(elf), framebuffer=None, serial=()))
    device = StuckDevice()
    try:
        board = m._new_board()
        board.pio.register(BENCH_PORT, 1, device, "stuck")
        m._install(board)
        assert device.entered.wait(20), "the guest never reached the port"
        yield m, device
    finally:
        device.release.set()
        m._shutdown()


async def timed(client: QMPClient, cmd: str) -> tuple[object, float]:
    started = time.monotonic()
    result = await client.execute(cmd)
    return result, time.monotonic() - started


def test_stop_cont_and_status_answer_at_once_while_a_vcpu_is_stuck(
    stuck: tuple[Machine, StuckDevice], tmp_path: Path
) -> None:
    """`stop` waited up to 5 s for every vCPU to acknowledge, on the QMP loop itself: one
    stalled backend froze the whole control socket."""
    m, device = stuck
    server = QmpServer(m.runtime, tmp_path / "qmp.sock")
    server.start_thread()

    async def scenario() -> None:
        client = QMPClient("test")
        await client.connect(server.path)
        try:
            for cmd, status in (("stop", "paused"), ("cont", "running"), ("stop", "paused")):
                _, took = await timed(client, cmd)
                assert took < ANSWER_WITHIN, f"{cmd} took {took:.3f} s"
                reply, took = await timed(client, "query-status")
                assert took < ANSWER_WITHIN
                assert reply["status"] == status  # type: ignore[index]
        finally:
            await client.disconnect()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
        device.release.set()  # the access completes; the paused vCPU must not run on
        vcpu = m.board.vcpus[0]  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        while not vcpu.paused:
            assert time.monotonic() < deadline, "the vCPU ran on after stop"
            time.sleep(0.01)
    finally:
        server.stop_thread()


def test_teardown_waits_for_a_stuck_vcpu_before_releasing_its_fds(
    stuck: tuple[Machine, StuckDevice],
) -> None:
    """Board.close() closed the vCPU fds and unmapped RAM under a vCPU thread that did not stop
    in time: the next Board reused those fd numbers and the old thread's KVM_RUN hit them."""
    m, device = stuck
    board = m.board
    assert board is not None and board.mem is not None
    vcpu_fd = board.vcpus[0].fd.fd
    started = time.monotonic()
    assert m._close_board() is False  # bounded: does not wait for the stuck thread
    assert time.monotonic() - started < 1.0
    os.fstat(vcpu_fd)  # still open
    assert board.mem is not None and board.vm is not None
    device.release.set()
    deadline = time.monotonic() + 10
    while board.mem is not None:  # released by the reaper once the thread has ended
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.01)
    assert board.vcpus == [] and board.vm is None


class BrokenDevice:
    """A device model with a bug: its first write raises."""

    def read(self, offset: int, size: int) -> int:
        return 0xFF

    def write(self, offset: int, size: int, value: int) -> None:
        raise RuntimeError("device model bug")


def test_a_vmm_bug_on_a_vcpu_is_one_line_for_people_and_a_traceback_in_the_log(
    build_guest: Callable[..., Path], tmp_path: Path
) -> None:
    """The vCPU thread turned any exception into "internal error: ..." and the traceback went
    nowhere; with --log it must land in the log file."""
    need_kvm()
    install_kick_handler()
    log = tmp_path / "vmm.log"
    level = logging.getLogger().level
    handler = cli.log_to_file(str(log))
    elf = build_guest("portbench", ("-DPORTBENCH_COUNT=2000000000",))
    m = Machine(MachineConfig(kernel=str(elf), framebuffer=None, serial=()))
    try:
        board = m._new_board()
        board.pio.register(BENCH_PORT, 1, BrokenDevice(), "broken")
        m._install(board)
        deadline = time.monotonic() + 20
        while not m._requests:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        m._handle(*m._requests.popleft())
        assert m._exit == (1, "vCPU 0: internal error: device model bug")
        text = log.read_text()
        assert "Traceback (most recent call last)" in text
        assert "RuntimeError: device model bug" in text and "in write" in text
    finally:
        m._shutdown()
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
        handler.close()


def test_log_option_errors_and_the_reason_the_vm_ended(build_guest: Callable[..., Path], tmp_path: Path) -> None:
    need_kvm()
    log = tmp_path / "vmm.log"
    r = run_vmm("--kernel", build_guest("emufail"), "--log", log)
    assert r.returncode == 1
    line = r.stderr.decode().strip()
    assert len(line.splitlines()) == 1 and line.startswith("vmgui-vmm: vCPU 0:")
    text = log.read_text()
    assert "started" in text and line.removeprefix("vmgui-vmm: ") in text
    r = run_vmm("--kernel", build_guest("hello"), "--log", tmp_path / "no" / "dir" / "x.log")
    assert r.returncode == 1
    assert r.stderr.decode().strip().endswith("x.log: No such file or directory")
