"""`vmgui host-check` as a real subprocess: verdict, stable JSON keys, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import kvm_node, need_kvm, without_permission_override

REPO = Path(__file__).resolve().parents[2]

TOP_KEYS = {
    "schema", "verdict", "can_run_vms", "headline", "reason", "advice",
    "cpu", "kvm", "speed", "connections",
}  # fmt: skip
CPU_KEYS = {
    "vendor", "model", "logical_cpus", "virt_extension", "hypervisor_flag", "hypervisor",
    "container",
}  # fmt: skip
KVM_KEYS = {
    "device", "present", "readable", "writable", "usable", "problem", "fix", "api_version",
    "module", "nested", "capabilities",
}  # fmt: skip
SPEED_KEYS = {"host_instructions_per_second", "ring0", "ring3", "error"}
SAMPLE_KEYS = {"instructions_per_second", "ratio_to_host", "iterations", "seconds"}
CONNECTION_KEYS = {
    "uri", "ok", "error", "arch", "emulator", "domain_types", "kvm", "machines", "firmware",
    "max_vcpus",
}  # fmt: skip


def host_check(*args: str, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "vmgui.app", "host-check", *args]
    if unprivileged:
        cmd = [*without_permission_override(), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_json_on_this_machine_is_usable_with_the_measured_verdict() -> None:
    need_kvm()
    proc = host_check("--json")
    assert proc.returncode == 0, proc.stderr
    doc = as_json(proc)
    assert set(doc) == TOP_KEYS and set(doc["cpu"]) == CPU_KEYS and set(doc["kvm"]) == KVM_KEYS
    assert set(doc["speed"]) == SPEED_KEYS
    assert set(doc["speed"]["ring0"]) == SAMPLE_KEYS == set(doc["speed"]["ring3"])
    assert doc["schema"] == 1 and doc["can_run_vms"] is True
    assert doc["kvm"]["usable"] is True and doc["kvm"]["api_version"] == 12
    assert doc["kvm"]["problem"] is None and doc["kvm"]["capabilities"]["irqfd"] > 0
    # The verdict comes from the measurement: ring 3 near native, ring 0 near it (VT-x/AMD-V)
    # or far below it (emulated, kvm_pvm).
    assert doc["speed"]["ring3"]["ratio_to_host"] > 0.3
    if doc["verdict"] == "hardware-assisted":
        assert doc["speed"]["ring0"]["ratio_to_host"] > 0.3, doc["reason"]
        assert doc["headline"].startswith("Hardware-assisted: ")
        assert any("type 'kvm'" in a for a in doc["advice"])
    else:
        assert doc["verdict"] == "emulated", doc["reason"]
        assert doc["speed"]["ring0"]["ratio_to_host"] < 0.01
        assert doc["headline"].startswith("Emulated: ")
        assert any("type 'qemu'" in a for a in doc["advice"])
    assert doc["connections"] == []


def test_text_output_is_verdict_first_then_sections() -> None:
    need_kvm()
    proc = host_check()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    headline = lines[0]
    emulated = headline.startswith("Emulated: ") and headline.endswith("guests will be very slow")
    assert emulated or headline == "Hardware-assisted: VMs run at full speed here", headline
    for section in ("What to do:", "CPU", "KVM", "Measured speed"):
        assert section in lines
    assert any(line.strip().startswith("Guest ring 0") for line in lines)


def test_unprivileged_user_gets_exit_1_and_the_fix(tmp_path: Path) -> None:
    node = kvm_node(tmp_path, 0o660)  # udev's usual nobody-can't, group-kvm-can node
    proc = host_check("--json", "--device", node, unprivileged=True)
    assert proc.returncode == 1, proc.stderr
    doc = as_json(proc)
    assert doc["verdict"] == "unavailable" and doc["can_run_vms"] is False
    assert doc["kvm"]["present"] is True and doc["kvm"]["usable"] is False
    assert doc["kvm"]["problem"].startswith(f"permission denied opening {node}")
    assert "usermod -aG kvm" in doc["kvm"]["fix"]
    assert doc["speed"] is None
    text = host_check("--device", node, unprivileged=True)
    assert text.returncode == 1
    assert text.stdout.startswith(f"VMs cannot run here: permission denied opening {node}")
    assert "Fix" in text.stdout


def test_missing_device_exit_1_with_reason(tmp_path: Path) -> None:
    proc = host_check("--json", "--device", str(tmp_path / "kvm"))
    assert proc.returncode == 1
    doc = as_json(proc)
    assert doc["verdict"] == "unavailable" and "does not exist" in doc["kvm"]["problem"]
    assert doc["kvm"]["fix"]


def test_bad_argument_is_one_clear_line() -> None:
    proc = host_check("--frobnicate")
    assert proc.returncode == 2
    assert "unrecognized arguments: --frobnicate" in proc.stderr.splitlines()[-1]
    proc = host_check("--connect", "qemu:/system")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "'qemu:/system' is not a libvirt URI" in proc.stderr.splitlines()[-1]


def test_connect_reports_a_real_libvirtd(libvirtd_uri: str) -> None:
    proc = host_check("--json", "--no-measure", "--connect", libvirtd_uri, "--connect", "bad:///")
    doc = as_json(proc)
    good, bad = doc["connections"]
    assert set(good) == CONNECTION_KEYS
    assert good["uri"] == libvirtd_uri and good["ok"] is True and "qemu" in good["domain_types"]
    assert good["machines"][:2] == ["pc", "q35"] and "bios" in good["firmware"]
    assert bad["ok"] is False and bad["error"] and bad["domain_types"] == []
    text = host_check("--no-measure", "--connect", libvirtd_uri)
    assert f"libvirt {libvirtd_uri}" in text.stdout and "qemu (TCG emulation)" in text.stdout


def test_no_measure_says_skipped_not_failed() -> None:
    need_kvm()
    proc = host_check("--no-measure")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "failed" not in text and "not usable" not in text.split("Measured speed")[1]
    assert "not measured (--no-measure)" in text
    assert "skipped" in text.split("Measured speed")[1]
