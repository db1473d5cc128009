"""End to end through the real `vmgui-vmm` process and /dev/kvm: one test guest per behaviour."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import need_kvm
from tests.vmm.vmm_process import read_until, run_vmm, start_vmm, stop_vmm

Build = Callable[..., Path]


@pytest.fixture(autouse=True)
def _kvm() -> None:
    need_kvm()


def test_serial_hello_and_poweroff_exit_zero(build_guest: Build) -> None:
    r = run_vmm("--kernel", build_guest("hello"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from guest\nmagic 0x336ec578\n"
    assert r.stderr == b""


def test_serial_echo_with_rx_interrupts(build_guest: Build) -> None:
    proc = start_vmm("--kernel", build_guest("echo"))
    try:
        read_until(proc, b"ready\n")
        assert proc.stdin is not None
        proc.stdin.write(b"hi")
        proc.stdin.flush()
        read_until(proc, b"<h><i>")
        proc.stdin.write(b"q")
        proc.stdin.flush()
        out = read_until(proc, b"\n", timeout=10)
        assert proc.wait(10) == 0
        assert b"<q>" in out
    finally:
        stop_vmm(proc)


def test_rtc_reads_host_time(build_guest: Build) -> None:
    r = run_vmm("--kernel", build_guest("rtc"))
    assert r.returncode == 0, r.stderr
    m = re.search(rb"rtc (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", r.stdout)
    assert m, r.stdout
    guest = datetime.datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((now - guest).total_seconds()) < 10


def test_two_vcpus_both_report(build_guest: Build) -> None:
    r = run_vmm("--cpus", "2", "--kernel", build_guest("smp"))
    assert r.returncode == 0, r.stderr
    assert b"cpu 0 up" in r.stdout and b"cpu 1 up" in r.stdout
    assert b"cpus 2\n" in r.stdout


def test_i8042_reset_with_on_reboot_stop_exits_zero(build_guest: Build) -> None:
    r = run_vmm("--kernel", build_guest("reset"))
    assert (r.returncode, r.stdout) == (0, b"resetting\n"), r.stderr


def test_reset_with_on_reboot_restart_boots_again(build_guest: Build) -> None:
    proc = start_vmm("--on-reboot", "restart", "--kernel", build_guest("reset"))
    try:
        out = read_until(proc, b"resetting\nresetting\nresetting\n")
        assert out.count(b"resetting") >= 3
    finally:
        assert stop_vmm(proc) == 0  # SIGTERM: a clean quit


def test_wild_io_does_not_crash_the_vmm(build_guest: Build) -> None:
    r = run_vmm("--kernel", build_guest("wild"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"ports 0x000000ff\nmmio 0xffffffff\nsurvived\n"


def test_emulation_failure_stops_with_reason_and_rip(build_guest: Build) -> None:
    r = run_vmm("--kernel", build_guest("emufail"))
    assert r.returncode == 1
    assert r.stdout == b"jumping\n"
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"vmgui-vmm: vCPU 0: KVM_EXIT_INTERNAL_ERROR: .*\(suberror \d+\).* at guest RIP 0x[0-9a-f]+",
        lines[0],
    ), lines[0]


def test_serial_to_file(build_guest: Build, tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    r = run_vmm("--kernel", build_guest("hello"), "--serial", f"file:{log}")
    assert (r.returncode, r.stdout) == (0, b""), r.stderr
    assert log.read_bytes().startswith(b"hello from guest\n")
