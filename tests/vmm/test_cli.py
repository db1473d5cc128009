"""`vmgui-vmm run` bad input: each case exits non-zero with exactly one line saying why."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import kvm_node, need, need_kvm, without_permission_override
from tests.vmm.vmm_process import REPO, VMM, run_vmm, vmm_env

Build = Callable[..., Path]
DEBIAN_KERNEL = REPO / ".cache" / "debian-kernel" / "vmlinuz"


def one_line_error(r: object, pattern: str) -> None:
    import re
    import subprocess

    assert isinstance(r, subprocess.CompletedProcess)
    lines = r.stderr.decode().splitlines()
    assert r.returncode != 0
    assert len(lines) == 1, lines
    assert re.search(pattern, lines[0]), lines[0]
    assert lines[0].startswith("vmgui-vmm: ")


def test_missing_kernel(tmp_path: Path) -> None:
    one_line_error(run_vmm("--kernel", tmp_path / "nope"), r"kernel file not found: .*nope$")


def test_missing_initrd(build_guest: Build, tmp_path: Path) -> None:
    r = run_vmm("--kernel", build_guest("hello"), "--initrd", tmp_path / "nope")
    one_line_error(r, r"initrd file not found")


def test_not_a_kernel(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(4096))
    one_line_error(run_vmm("--kernel", junk), r"not a bzImage or PVH ELF")


def test_elf_without_pvh_note(build_guest: Build, tmp_path: Path) -> None:
    image = bytearray(build_guest("hello").read_bytes())
    note = image.index(b"Xen\0") - 4  # the note's type field: 18 -> 17 (not PHYS32_ENTRY)
    struct.pack_into("<I", image, note, 17)
    elf = tmp_path / "no-note.elf"
    elf.write_bytes(bytes(image))
    one_line_error(run_vmm("--kernel", elf), r"no PVH entry note")


def test_boot_protocol_too_old(tmp_path: Path) -> None:
    image = bytearray(0x4000)
    image[0x1F1] = 4  # setup_sects
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, 0x0201)  # protocol 2.01
    old = tmp_path / "old-bzImage"
    old.write_bytes(bytes(image))
    one_line_error(run_vmm("--kernel", old), r"boot protocol 2\.01 too old")


def test_initrd_does_not_fit(build_guest: Build, tmp_path: Path) -> None:
    need_kvm()
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"\0" * (6 << 20))
    r = run_vmm("--kernel", build_guest("hello"), "--initrd", initrd, "--memory", "4M")
    one_line_error(r, r"initrd does not fit in memory")


def test_bzimage_does_not_fit() -> None:
    need_kvm()
    need(DEBIAN_KERNEL.exists(), "Debian kernel not fetched (bash tests/fetch_assets.sh)")
    one_line_error(run_vmm("--kernel", DEBIAN_KERNEL, "--memory", "8M"), r"kernel does not fit")


def test_no_kvm_device_names_the_fix(build_guest: Build, tmp_path: Path) -> None:
    r = run_vmm(
        "--kernel", build_guest("hello"), env=vmm_env(VMGUI_KVM_DEVICE=str(tmp_path / "kvm"))
    )
    one_line_error(r, r"does not exist: load the KVM module")


def test_no_kvm_permission_names_the_group(build_guest: Build, tmp_path: Path) -> None:
    need_kvm()
    node = kvm_node(tmp_path, 0o000)
    import subprocess

    r = subprocess.run(
        [*without_permission_override(), *VMM, "run"]
        + ["--kernel", str(build_guest("hello")), "--framebuffer", "none"],
        capture_output=True,
        env=vmm_env(VMGUI_KVM_DEVICE=node),
        timeout=30,
        check=False,
    )
    one_line_error(r, r"no permission to open .*add your user to the 'kvm' group")


@pytest.mark.parametrize(
    ("option", "value", "pattern"),
    [
        ("--memory", "lots", r"memory size 'lots'"),
        ("--memory", "1T", r"out of range"),
        ("--cpus", "0", r"--cpus 0: must be"),
        ("--cpus", "41", r"--cpus 41: must be 1\.\.40"),
        ("--serial", "tcp:1", r"--serial 'tcp:1': expected"),
        ("--framebuffer", "8x8", r"too small"),
        ("--framebuffer", "wide", r"expected WIDTHxHEIGHT"),
        ("--on-reboot", "later", r"invalid choice"),
        ("--qmp", "/nonexistent-dir/qmp.sock", r"--qmp /nonexistent-dir/qmp.sock: "),
    ],
)
def test_bad_option(build_guest: Build, option: str, value: str, pattern: str) -> None:
    need_kvm()
    r = run_vmm("--kernel", build_guest("hello"), option, value)
    one_line_error(r, pattern)


NON_UTF8 = os.fsdecode(b"\xff-name")


@pytest.mark.parametrize(
    ("make", "option", "value", "pattern"),
    [
        ("fifo", "--disk", "{p}", r"disk image .*fifo is not a regular file or block device$"),
        ("fifo", "--disk", "{p},ro", r"disk image .*fifo is not a regular file or block device$"),
        ("dir", "--disk", "{p}", r"disk image .*dir is a directory$"),
        ("fifo", "--serial", "file:{p}", r"--serial file:.*fifo: not a regular file"),
        ("dir", "--serial", "file:{p}", r"--serial file:.*dir: is a directory$"),
        ("fifo", "--log", "{p}", r"--log .*fifo: not a regular file"),
        ("fifo-" + NON_UTF8, "--disk", "{p},ro", r"disk image .*fifo-\ufffd-name is not a regular"),
        ("dir-" + NON_UTF8, "--serial", "file:{p}", r"--serial file:.*dir-\ufffd-name: is a dir"),
    ],
)
def test_special_files_are_one_line_and_never_block_start_up(
    build_guest: Build, tmp_path: Path, make: str, option: str, value: str, pattern: str
) -> None:
    """A FIFO would block open() (and with it SIGTERM) before the VM runs; a directory or a
    non-UTF-8 name used to end in a traceback. Each is one line, at once."""
    need_kvm()
    p = tmp_path / make
    if make.startswith("fifo"):
        os.mkfifo(p)
    else:
        p.mkdir()
    r = run_vmm("--kernel", build_guest("hello"), option, value.format(p=p))
    one_line_error(r, pattern)


def test_an_unexpected_error_is_one_line_and_a_traceback_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from vmgui.vmm import cli, machine

    def broken(self: object) -> int:
        raise KeyError("a VMM bug")

    monkeypatch.setattr(machine.Machine, "__init__", lambda self, cfg, early=None: None)
    monkeypatch.setattr(machine.Machine, "run", broken)
    kernel = tmp_path / "k"
    kernel.write_bytes(b"\0" * 4096)
    log = tmp_path / "vmm.log"
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        status = cli.main(["run", "--kernel", str(kernel), "--log", str(log), "--serial", "none"])
    finally:
        for h in set(root.handlers) - set(before):
            root.removeHandler(h)
            h.close()
        root.setLevel(level)
    assert status == 1
    err = capsys.readouterr().err
    assert err == f"vmgui-vmm: internal error: 'a VMM bug' (details in {log})\n"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "KeyError: 'a VMM bug'" in text
