"""/dev/kvm diagnosis: every fix branch (pure), the real device, a real permission denial as an
unprivileged user, and agreement with libvirt's virt-host-validate."""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import kvm_node, need, need_kvm, without_permission_override
from vmgui.host.cpuinfo import read_cpu, read_kvm_module
from vmgui.host.kvm_check import DeviceAccess, UserGroups, check_kvm, diagnose
from vmgui.model.host import HostCpu, KvmModule

REPO = Path(__file__).resolve().parents[2]
INTEL = HostCpu("GenuineIntel", "Core i7", 4, "vmx")
AMD = HostCpu("AuthenticAMD", "Ryzen", 2, "svm")
PLAIN = HostCpu("GenuineIntel", "Atom", 2, "")
GUEST = HostCpu("AuthenticAMD", "EPYC", 2, "", hypervisor_flag=True, hypervisor="kvm")
ALICE = UserGroups("alice", frozenset({"alice"}), frozenset({"alice"}))


def denied(group: str = "kvm", mode: int = 0o660) -> DeviceAccess:
    return DeviceAccess("/dev/kvm", True, False, False, errno.EACCES, group, mode)


MISSING = DeviceAccess("/dev/kvm", present=False)


def test_usable_device_has_no_problem() -> None:
    ok = DeviceAccess("/dev/kvm", True, True, True, 0, "kvm", 0o660)
    assert diagnose(ok, INTEL, KvmModule("kvm_intel"), ALICE) == ("", "")


@pytest.mark.parametrize(
    ("cpu", "module", "problem_part", "fix_part"),
    [
        (INTEL, KvmModule(), "kvm_intel module is not loaded", "sudo modprobe kvm_intel"),
        (AMD, KvmModule(), "kvm_amd module is not loaded", "sudo modprobe kvm_amd"),
        (PLAIN, KvmModule(), "CPU shows no VT-x/AMD-V", "firmware (BIOS/UEFI)"),
        (GUEST, KvmModule(), "virtual machine (kvm)", "nested virtualization"),
        (INTEL, KvmModule("kvm_intel"), "although module kvm_intel is loaded", "dmesg"),
    ],
)
def test_missing_device_fixes(
    cpu: HostCpu, module: KvmModule, problem_part: str, fix_part: str
) -> None:
    problem, fix = diagnose(MISSING, cpu, module, ALICE)
    assert problem_part in problem and fix_part in fix


def test_missing_device_in_container() -> None:
    cpu = HostCpu("GenuineIntel", "x", 2, "vmx", container="docker")
    problem, fix = diagnose(MISSING, cpu, KvmModule("kvm_intel"), ALICE)
    assert "docker container" in problem and "--device /dev/kvm" in fix


def test_denied_not_in_group() -> None:
    problem, fix = diagnose(denied(), INTEL, KvmModule("kvm_intel"), ALICE)
    assert "permission denied" in problem and "'kvm'" in problem
    assert fix == "sudo usermod -aG kvm $USER, then log out and log in again"


def test_denied_added_to_group_but_session_is_older() -> None:
    groups = UserGroups("alice", frozenset({"alice"}), frozenset({"alice", "kvm"}))
    _, fix = diagnose(denied(), INTEL, KvmModule("kvm_intel"), groups)
    assert fix.startswith("log out and log in again") and "newgrp kvm" in fix


def test_denied_although_group_allows_blames_policy() -> None:
    groups = UserGroups("alice", frozenset({"alice", "kvm"}), frozenset({"alice", "kvm"}))
    _, fix = diagnose(denied(), INTEL, KvmModule("kvm_intel"), groups)
    assert "security policy" in fix


def test_denied_root_only_device_needs_chmod() -> None:
    _, fix = diagnose(denied("root", 0o600), INTEL, KvmModule("kvm_intel"), ALICE)
    assert "sudo chmod 0660 /dev/kvm" in fix and "usermod -aG kvm" in fix


def test_no_driver_behind_node() -> None:
    access = DeviceAccess("/dev/kvm", True, True, True, errno.ENXIO, "kvm", 0o660)
    problem, fix = diagnose(access, AMD, KvmModule(), ALICE)
    assert "no driver" in problem and fix == "sudo modprobe kvm_amd"


def test_missing_path_end_to_end(tmp_path: Path) -> None:
    dev = check_kvm(PLAIN, KvmModule(), str(tmp_path / "kvm"))
    assert not dev.present and not dev.usable and "does not exist" in dev.problem


def test_not_a_kvm_device(tmp_path: Path) -> None:
    fake = tmp_path / "kvm"
    fake.write_bytes(b"")
    dev = check_kvm(INTEL, KvmModule("kvm_intel"), str(fake))
    assert dev.opened and not dev.usable and "is not a KVM device" in dev.problem


def test_real_dev_kvm_is_usable_with_the_features_the_vmm_needs() -> None:
    need_kvm()
    dev = check_kvm(read_cpu(), read_kvm_module())
    assert dev.usable and dev.problem == "" and dev.api_version == 12
    caps = dev.capabilities
    for name in ("irqchip", "irqfd", "ioeventfd", "immediate_exit", "manual_dirty_log_protect"):
        assert caps[name] > 0, name
    assert caps["max_vcpus"] >= caps["nr_vcpus"] >= 1


def test_permission_denied_on_mode_000_device(tmp_path: Path) -> None:
    node = kvm_node(tmp_path, 0o000)
    code = (
        "import json; from vmgui.host.kvm_check import check_kvm;"
        "from vmgui.host.cpuinfo import read_cpu, read_kvm_module;"
        f"d = check_kvm(read_cpu(), read_kvm_module(), {node!r});"
        "print(json.dumps([d.present, d.opened, d.usable, d.problem, d.fix]))"
    )
    proc = subprocess.run(
        [*without_permission_override(), sys.executable, "-c", code],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    present, opened, usable, problem, fix = json.loads(proc.stdout)
    assert present and not opened and not usable
    assert problem.startswith(f"permission denied opening {node}")
    assert "mode 0000" in problem
    assert "sudo chmod 0660" in fix  # the group cannot read a mode-000 node


def _virt_host_validate() -> dict[str, str]:
    """virt-host-validate's QEMU check lines: description -> PASS/WARN/FAIL (+ note)."""
    tool = shutil.which("virt-host-validate")
    need(tool, "virt-host-validate is not installed (Debian package libvirt-clients)")
    assert tool is not None
    out = subprocess.run(
        [tool, "qemu"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    results = {}
    for line in out.splitlines():
        m = re.match(r"\s*QEMU: (Checking [^:]*?)\s*: (PASS|WARN|FAIL)(.*)", line)
        if m:
            results[m.group(1)] = m.group(2) + m.group(3)
    assert results, f"no check lines in virt-host-validate output:\n{out}"
    return results


def test_agrees_with_virt_host_validate() -> None:
    checks = _virt_host_validate()
    cpu = read_cpu()
    dev = check_kvm(cpu, read_kvm_module())
    hw = checks.get("Checking for hardware virtualization", "")
    # Both read the CPU flags: PASS exactly when vmx/svm is visible.
    assert hw.startswith("PASS") == bool(cpu.virt_extension), hw
    exists = checks.get("Checking if device /dev/kvm exists")
    accessible = checks.get("Checking if device /dev/kvm is accessible")
    if exists is not None:
        assert exists.startswith("PASS") == dev.present
    if accessible is not None:
        assert accessible.startswith("PASS") == dev.opened
    if exists is None:
        # virt-host-validate skips its /dev/kvm checks when the CPU shows no VT-x/AMD-V; our
        # probe still looks, and says why the device exists anyway (see the speed verdict).
        assert hw.startswith("FAIL") and not cpu.virt_extension
