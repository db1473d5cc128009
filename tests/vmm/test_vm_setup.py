"""VM-wide set-up on the helper thread (vm_setup.EarlyStart) and how `vmgui-vmm run` uses it:
the work is handed over intact, errors wait for the step that needs them, a wrong guess of the
memory size from argv is discarded, and nothing is left open."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import need_kvm
from tests.vmm.vmm_process import run_vmm
from vmgui.vmm import kvm
from vmgui.vmm.cli import start_early
from vmgui.vmm.vm_setup import EarlyStart

Build = Callable[..., Path]
MiB = 1 << 20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_early_start_hands_over_a_working_vm() -> None:
    need_kvm()
    before = open_fds()
    early = EarlyStart(8 * MiB)
    system = early.take_kvm()
    shell = early.take_shell()
    assert [r.size for r in shell.mem.regions] == [8 * MiB]
    assert shell.supported_cpuid  # fetched on the thread too
    vcpu = shell.vm.create_vcpu(0)  # the VM (irqchip included) is usable
    assert vcpu.get_lapic() is not None
    vcpu.close()
    early.close()  # nothing left to release: both were taken
    assert shell.vm.fd >= 0
    shell.close()
    system.close()
    assert open_fds() == before


def test_close_releases_what_was_not_taken() -> None:
    need_kvm()
    before = open_fds()
    early = EarlyStart(8 * MiB)
    early.close()
    assert open_fds() == before


def test_an_open_error_waits_for_take_kvm(tmp_path: Path) -> None:
    early = EarlyStart(8 * MiB, device=str(tmp_path / "no-kvm"))
    with pytest.raises(kvm.KvmError, match="does not exist"):
        early.take_kvm()
    early.close()


@pytest.mark.parametrize(
    ("argv", "memory"),
    [
        (["run", "--kernel", "k"], 256 * MiB),
        (["run", "--kernel", "k", "--memory", "64M"], 64 * MiB),
        (["run", "--memory=1G", "--kernel", "k", "--memory", "32M"], 32 * MiB),  # last one wins
    ],
)
def test_start_early_reads_the_memory_size_from_argv(argv: list[str], memory: int) -> None:
    need_kvm()
    early = start_early(argv)
    assert early is not None
    try:
        assert early.memory == memory
    finally:
        early.close()


@pytest.mark.parametrize(
    "argv",
    [[], ["--help"], ["run", "--help"], ["run", "-h"], ["run", "--memory", "lots"],
     ["run", "--memory", "1T"]],
)  # fmt: skip
def test_no_early_start_for_help_or_bad_memory(argv: list[str]) -> None:
    assert start_early(argv) is None


def test_abbreviated_memory_option_still_gets_its_size(build_guest: Build, tmp_path: Path) -> None:
    """argparse accepts --mem for --memory: the early guess (256M) must be discarded, so a 6 MiB
    initrd does not fit the 4 MiB asked for."""
    need_kvm()
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"\0" * (6 * MiB))
    r = run_vmm("--kernel", build_guest("hello"), "--initrd", initrd, "--mem", "4M")
    assert r.returncode != 0
    assert b"initrd does not fit in memory" in r.stderr
