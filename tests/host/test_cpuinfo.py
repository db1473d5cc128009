"""cpuinfo / module / hypervisor parsing: Intel, AMD and nested samples, fake sysfs trees, and
this host read for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import need_tool
from vmgui.host import cpuinfo as ci
from vmgui.model.host import KvmModule

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / f"cpuinfo_{name}.txt").read_text()


@pytest.mark.parametrize(
    ("name", "vendor", "model", "count", "ext", "hypervisor"),
    [
        (
            "intel_bare_metal",
            "GenuineIntel",
            "12th Gen Intel(R) Core(TM) i7-1260P",
            4,
            "vmx",
            False,
        ),
        ("amd_bare_metal", "AuthenticAMD", "AMD Ryzen 9 5950X 16-Core Processor", 2, "svm", False),
        (
            "intel_nested_guest",
            "GenuineIntel",
            "Intel Xeon Processor (Cascadelake)",
            2,
            "vmx",
            True,
        ),
        ("amd_guest_no_svm", "AuthenticAMD", "AMD EPYC", 2, "", True),
    ],
)
def test_parse_cpuinfo_samples(
    name: str, vendor: str, model: str, count: int, ext: str, hypervisor: bool
) -> None:
    parsed = ci.parse_cpuinfo(sample(name))
    assert (parsed.vendor, parsed.model_name, parsed.logical_cpus) == (vendor, model, count)
    assert ci.virt_extension(parsed.flags) == ext
    assert ("hypervisor" in parsed.flags) is hypervisor


def test_vmx_flags_line_is_not_the_flags_line() -> None:
    # "vmx flags" follows "flags" on Intel; its words (ept, vpid) are not CPU flags.
    parsed = ci.parse_cpuinfo(sample("intel_bare_metal"))
    assert "unrestricted_guest" not in parsed.flags and "vmx" in parsed.flags


def test_parse_cpuinfo_empty_and_garbage() -> None:
    parsed = ci.parse_cpuinfo("no colon here\n\n:::\n")
    assert parsed.vendor == "" and parsed.flags == frozenset() and parsed.logical_cpus == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("Y\n", True), ("N\n", False), ("1\n", True), ("0", False), ("", None), ("maybe", None)],
)
def test_module_bool(text: str, value: bool | None) -> None:
    assert ci.parse_module_bool(text) is value


@pytest.mark.parametrize(
    ("loaded", "expected"),
    [
        ({"kvm", "kvm_intel", "irqbypass"}, "kvm_intel"),
        ({"kvm", "kvm_amd", "ccp"}, "kvm_amd"),
        ({"kvm", "kvm_pvm"}, "kvm_pvm"),
        ({"kvm", "kvmgt", "kvm_intel"}, "kvm_intel"),
        ({"kvm"}, "kvm"),
        ({"ext4", "loop"}, ""),
    ],
)
def test_pick_kvm_module(loaded: set[str], expected: str) -> None:
    assert ci.pick_kvm_module(loaded) == expected


def test_parse_proc_modules() -> None:
    text = (
        "kvm_intel 380928 0 - Live 0x0000000000000000\n"
        "kvm 1142784 1 kvm_intel, Live 0x0000000000000000\n"
        "irqbypass 16384 1 kvm, Live 0x0000000000000000\n"
    )
    assert ci.parse_proc_modules(text) == {"kvm_intel", "kvm", "irqbypass"}


@pytest.mark.parametrize(
    ("vendor", "product", "expected"),
    [
        ("QEMU", "Standard PC (Q35 + ICH9, 2009)", "qemu"),
        ("VMware, Inc.", "VMware7,1", "vmware"),
        ("innotek GmbH", "VirtualBox", "oracle"),
        ("Microsoft Corporation", "Virtual Machine", "microsoft"),
        ("Microsoft Corporation", "Surface Laptop 5", ""),
        ("Amazon EC2", "m5.large", "amazon"),
        ("Dell Inc.", "XPS 13 9310", ""),
    ],
)
def test_hypervisor_from_dmi(vendor: str, product: str, expected: str) -> None:
    assert ci.hypervisor_from_dmi(vendor, product) == expected


def test_parse_detect_virt() -> None:
    assert ci.parse_detect_virt("kvm\n") == "kvm"
    assert ci.parse_detect_virt("none\n") == ""
    assert ci.parse_detect_virt("") == ""


def fake_tree(tmp_path: Path, cpuinfo: str, modules: dict[str, dict[str, str]]) -> Path:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(sample(cpuinfo))
    for module, params in modules.items():
        pdir = tmp_path / "sys/module" / module / "parameters"
        pdir.mkdir(parents=True)
        for key, value in params.items():
            (pdir / key).write_text(value + "\n")
    return tmp_path


def test_read_intel_host_with_nested_enabled(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, "intel_bare_metal", {"kvm": {}, "kvm_intel": {"nested": "Y"}})
    cpu = ci.read_cpu(root, use_tools=False)
    assert (cpu.virt_extension, cpu.hypervisor_flag, cpu.hypervisor) == ("vmx", False, "")
    assert ci.read_kvm_module(root) == KvmModule("kvm_intel", nested=True)


def test_read_amd_host_nested_off_from_proc_modules(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, "amd_bare_metal", {"kvm_amd": {"nested": "0"}})
    (root / "proc/modules").write_text("kvm_amd 1 0 - Live 0x0\nkvm 1 1 kvm_amd, Live 0x0\n")
    assert ci.read_kvm_module(root) == KvmModule("kvm_amd", nested=False)
    assert ci.read_cpu(root, use_tools=False).virt_extension == "svm"


def test_read_nested_guest_names_hypervisor_from_dmi(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, "intel_nested_guest", {"kvm_intel": {"nested": "N"}})
    dmi = root / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("QEMU\n")
    (dmi / "product_name").write_text("Standard PC (i440FX + PIIX, 1996)\n")
    cpu = ci.read_cpu(root, use_tools=False)
    assert (cpu.virt_extension, cpu.hypervisor_flag, cpu.hypervisor) == ("vmx", True, "qemu")
    assert ci.read_kvm_module(root).nested is False


def test_read_xen_and_container_markers(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, "amd_guest_no_svm", {})
    (root / "sys/hypervisor").mkdir(parents=True)
    (root / "sys/hypervisor/type").write_text("xen\n")
    (root / ".dockerenv").write_text("")
    cpu = ci.read_cpu(root, use_tools=False)
    assert (cpu.hypervisor, cpu.container) == ("xen", "docker")
    assert ci.read_kvm_module(root) == KvmModule("", None)


def test_this_host_matches_proc_and_systemd_detect_virt() -> None:
    cpu = ci.read_cpu()
    text = Path("/proc/cpuinfo").read_text()
    flags = ci.parse_cpuinfo(text).flags
    assert cpu.vendor and cpu.logical_cpus >= 1
    assert cpu.hypervisor_flag == ("hypervisor" in flags)
    tool = need_tool("systemd-detect-virt")
    vm = subprocess.run([tool, "--vm"], capture_output=True, text=True, check=False).stdout
    assert cpu.hypervisor == ci.parse_detect_virt(vm)
    module = ci.read_kvm_module()
    loaded = {p.name for p in Path("/sys/module").iterdir()}
    assert module.name in loaded
