"""CPU, hypervisor and kvm-module facts, read from /proc and /sys.

Each source is parsed by a pure function (tested with Intel, AMD and nested samples); `read_cpu`
and `read_kvm_module` only fetch the text. `root` lets tests point them at a fake tree.
Guessing is avoided: the hypervisor name comes from systemd-detect-virt, /sys/hypervisor/type or
the DMI vendor strings (CPUID leaf 0x40000000 is not readable from Python), else it stays "".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vmgui.model.host import HostCpu, KvmModule

#: Modules that provide /dev/kvm, preferred in this order when several are loaded.
KNOWN_KVM_MODULES = ("kvm_intel", "kvm_amd")
#: Modules named kvm_* that are helpers, not /dev/kvm providers.
_NOT_PROVIDERS = frozenset({"kvm", "kvmgt", "kvm_intel_pt"})

#: DMI (sys_vendor or product_name) substrings -> systemd-detect-virt's names for hypervisors.
_DMI_HYPERVISORS = (
    ("QEMU", "qemu"),
    ("KVM", "kvm"),
    ("VMware", "vmware"),
    ("VirtualBox", "oracle"),
    ("innotek", "oracle"),
    ("Xen", "xen"),
    ("Bochs", "bochs"),
    ("Parallels", "parallels"),
    ("BHYVE", "bhyve"),
    ("Amazon EC2", "amazon"),
    ("Google Compute Engine", "google"),
    ("Apple Virtualization", "apple"),
)


@dataclass(frozen=True)
class CpuFlags:
    """The parts of /proc/cpuinfo the probe needs."""

    vendor: str
    model_name: str
    logical_cpus: int
    flags: frozenset[str]


def parse_cpuinfo(text: str) -> CpuFlags:
    """Parse /proc/cpuinfo (x86 layout); flags are those of the first processor."""
    vendor = model = ""
    flags: frozenset[str] | None = None
    count = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            count += 1
        elif key == "vendor_id" and not vendor:
            vendor = value
        elif key == "model name" and not model:
            model = value
        elif key == "flags" and flags is None:
            flags = frozenset(value.split())
    return CpuFlags(vendor, model, count, flags or frozenset())


def virt_extension(flags: frozenset[str]) -> str:
    """ "vmx" (Intel VT-x), "svm" (AMD-V) or "" when the CPU shows neither."""
    if "vmx" in flags:
        return "vmx"
    if "svm" in flags:
        return "svm"
    return ""


def parse_module_bool(text: str) -> bool | None:
    """A module parameter such as kvm_intel's "nested": "Y"/"N" or "1"/"0"."""
    value = text.strip().upper()
    if value in ("Y", "1"):
        return True
    if value in ("N", "0"):
        return False
    return None


def parse_proc_modules(text: str) -> set[str]:
    """Module names from /proc/modules (first column)."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def pick_kvm_module(loaded: set[str]) -> str:
    """The module providing /dev/kvm among loaded module names ("" when none)."""
    for name in KNOWN_KVM_MODULES:
        if name in loaded:
            return name
    others = sorted(n for n in loaded if n.startswith("kvm_") and n not in _NOT_PROVIDERS)
    if others:
        return others[0]
    return "kvm" if "kvm" in loaded else ""


def hypervisor_from_dmi(sys_vendor: str, product_name: str) -> str:
    """Map DMI vendor/product strings to a hypervisor name ("" when not a known VM)."""
    if sys_vendor.strip() == "Microsoft Corporation" and "Virtual Machine" in product_name:
        return "microsoft"
    for text in (sys_vendor, product_name):
        for needle, name in _DMI_HYPERVISORS:
            if needle.lower() in text.lower():
                return name
    return ""


def parse_detect_virt(stdout: str) -> str:
    """systemd-detect-virt prints one word; "none" means bare metal / no container."""
    word = stdout.strip().splitlines()[0].strip() if stdout.strip() else ""
    return "" if word in ("", "none") else word


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _detect_virt(option: str) -> str | None:
    """Run systemd-detect-virt (None when it is not installed or fails to answer)."""
    tool = shutil.which("systemd-detect-virt")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, option], capture_output=True, text=True, timeout=3, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_detect_virt(out)


def read_hypervisor(root: Path, use_tools: bool = True) -> str:
    """Which hypervisor this host runs under ("" on bare metal or when unknown)."""
    if use_tools:
        found = _detect_virt("--vm")
        if found is not None:
            return found
    xen = _read(root / "sys/hypervisor/type").strip()
    if xen:
        return xen
    dmi = root / "sys/class/dmi/id"
    from_dmi = hypervisor_from_dmi(_read(dmi / "sys_vendor"), _read(dmi / "product_name"))
    if from_dmi:
        return from_dmi
    return ""


def read_container(root: Path, use_tools: bool = True) -> str:
    """The container runtime we are inside ("" when none or unknown)."""
    if use_tools:
        found = _detect_virt("--container")
        if found is not None:
            return found
    if (root / ".dockerenv").exists():
        return "docker"
    if (root / "run/.containerenv").exists():
        return "podman"
    return ""


def read_cpu(root: Path = Path("/"), use_tools: bool = True) -> HostCpu:
    """CPU facts of this host; `use_tools=False` skips systemd-detect-virt (fake trees)."""
    parsed = parse_cpuinfo(_read(root / "proc/cpuinfo"))
    return HostCpu(
        vendor=parsed.vendor,
        model_name=parsed.model_name,
        logical_cpus=parsed.logical_cpus or (os.cpu_count() or 0),
        virt_extension=virt_extension(parsed.flags),
        hypervisor_flag="hypervisor" in parsed.flags,
        hypervisor=read_hypervisor(root, use_tools),
        container=read_container(root, use_tools),
    )


def read_kvm_module(root: Path = Path("/")) -> KvmModule:
    """The loaded /dev/kvm provider and its nested-virtualization setting.

    /proc/modules lists loadable modules; /sys/module also has built-in ones and is the only
    source inside containers, so both are read.
    """
    loaded = parse_proc_modules(_read(root / "proc/modules"))
    with contextlib.suppress(OSError):
        loaded |= {p.name for p in (root / "sys/module").iterdir()}
    name = pick_kvm_module(loaded)
    nested = None
    if name in KNOWN_KVM_MODULES:
        nested = parse_module_bool(_read(root / "sys/module" / name / "parameters/nested"))
    return KvmModule(name=name, nested=nested)
