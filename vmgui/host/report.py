"""HostStatus as JSON (stable keys, see vmgui.host.cli) and as sectioned text, verdict first."""

from __future__ import annotations

from typing import Any

from vmgui.host.probe import millions, percent
from vmgui.model.host import Calibration, DomainCapabilities, HostStatus, SpeedSample

#: Bumped only when a key changes meaning or disappears (adding keys keeps it).
JSON_SCHEMA = 1
#: Machine types shown per connection in text output (JSON has all of them).
TEXT_MACHINES = 6


def _none_if_empty(value: str) -> str | None:
    return value or None


def _sample_json(cal: Calibration, sample: SpeedSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {
        "instructions_per_second": round(sample.instructions_per_second),
        "ratio_to_host": cal.ratio(sample),
        "iterations": sample.iterations,
        "seconds": round(sample.seconds, 6),
    }


def _connection_json(c: DomainCapabilities) -> dict[str, Any]:
    return {
        "uri": c.uri,
        "ok": not c.error,
        "error": _none_if_empty(c.error),
        "arch": _none_if_empty(c.arch),
        "emulator": _none_if_empty(c.emulator),
        "domain_types": list(c.domain_types),
        "kvm": c.kvm,
        "machines": list(c.machines),
        "firmware": list(c.firmware),
        "max_vcpus": c.max_vcpus,
    }


def to_json(status: HostStatus) -> dict[str, Any]:
    """The documented JSON document (keys listed in vmgui.host.cli's docstring)."""
    cal = status.calibration
    speed = None
    if cal is not None:
        speed = {
            "host_instructions_per_second": round(cal.host.instructions_per_second)
            if cal.host
            else None,
            "ring0": _sample_json(cal, cal.ring0),
            "ring3": _sample_json(cal, cal.ring3),
            "error": _none_if_empty(cal.error),
        }
    return {
        "schema": JSON_SCHEMA,
        "verdict": status.verdict.value,
        "can_run_vms": status.can_run_vms,
        "headline": status.headline,
        "reason": status.reason,
        "advice": list(status.advice),
        "cpu": {
            "vendor": _none_if_empty(status.cpu.vendor),
            "model": _none_if_empty(status.cpu.model_name),
            "logical_cpus": status.cpu.logical_cpus,
            "virt_extension": _none_if_empty(status.cpu.virt_extension),
            "hypervisor_flag": status.cpu.hypervisor_flag,
            "hypervisor": _none_if_empty(status.cpu.hypervisor),
            "container": _none_if_empty(status.cpu.container),
        },
        "kvm": {
            "device": status.kvm.path,
            "present": status.kvm.present,
            "readable": status.kvm.readable,
            "writable": status.kvm.writable,
            "usable": status.kvm.usable,
            "problem": _none_if_empty(status.kvm.problem),
            "fix": _none_if_empty(status.kvm.fix),
            "api_version": status.kvm.api_version,
            "module": _none_if_empty(status.module.name),
            "nested": status.module.nested,
            "capabilities": dict(status.kvm.capabilities),
        },
        "speed": speed,
        "connections": [_connection_json(c) for c in status.connections],
    }


# --- text -------------------------------------------------------------------------------------


def _rows(rows: list[tuple[str, str]]) -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    return [f"  {k.ljust(width)}  {v}" for k, v in rows]


def cpu_rows(status: HostStatus) -> list[tuple[str, str]]:
    cpu = status.cpu
    ext = {"vmx": "Intel VT-x (vmx)", "svm": "AMD-V (svm)"}.get(
        cpu.virt_extension, "not visible (no vmx/svm flag)"
    )
    inside = []
    if cpu.hypervisor or cpu.hypervisor_flag:
        inside.append(f"a virtual machine ({cpu.hypervisor or 'unknown hypervisor'})")
    if cpu.container:
        inside.append(f"a {cpu.container} container")
    return [
        (
            "Model",
            f"{cpu.model_name or 'unknown'} ({cpu.vendor or '?'}), {cpu.logical_cpus} logical CPUs",
        ),
        ("Virtualization", ext),
        ("Running inside", ", ".join(inside) or "nothing (bare metal)"),
    ]


def kvm_rows(status: HostStatus) -> list[tuple[str, str]]:
    kvm, module = status.kvm, status.module
    if kvm.usable:
        state = f"usable (read/write), KVM API version {kvm.api_version}"
    elif not kvm.present:
        state = "missing"
    else:
        state = "present but not usable"
    rows = [(kvm.path, state)]
    if kvm.problem:
        rows.append(("Problem", kvm.problem))
    if kvm.fix:
        rows.append(("Fix", kvm.fix))
    nested = {True: "nested=Y", False: "nested=N", None: "nested: n/a"}[module.nested]
    rows.append(("Module", f"{module.name or 'none loaded'} ({nested})"))
    if kvm.capabilities:
        caps = kvm.capabilities
        counts = ("nr_vcpus", "max_vcpus", "nr_memslots")
        have = [n for n, v in caps.items() if v and n not in counts]
        missing = [n for n, v in caps.items() if not v and n not in counts]
        rows.append(("Capabilities", ", ".join(have) or "none"))
        if missing:
            rows.append(("Missing", ", ".join(missing)))
        rows.append(
            ("vCPUs", f"{caps.get('nr_vcpus', 0)} recommended, {caps.get('max_vcpus', 0)} max")
        )
    return rows


def speed_rows(status: HostStatus) -> list[tuple[str, str]]:
    cal = status.calibration
    if cal is None:
        if status.kvm.usable:
            return [("Not measured", "skipped (--no-measure)")]
        return [("Not measured", f"{status.kvm.path} is not usable")]
    rows = []
    labels = (("Host (native)", cal.host), ("Guest ring 0", cal.ring0), ("Guest ring 3", cal.ring3))
    for label, sample in labels:
        if sample is None:
            continue
        ratio = cal.ratio(sample)
        rel = ""
        if ratio is not None and sample is not cal.host:
            text = percent(ratio)
            rel = f" ({text})" if "native" in text else f" ({text} of host)"
        rows.append((label, f"{millions(sample.instructions_per_second)} instructions/s{rel}"))
    if cal.error:
        rows.append(("Error", cal.error))
    return rows


def connection_rows(c: DomainCapabilities) -> list[tuple[str, str]]:
    if c.error and not c.domain_types:
        return [("Error", c.error)]
    kinds = {"kvm": "kvm (hardware-assisted)", "qemu": "qemu (TCG emulation)"}
    rows = [
        ("Domain types", ", ".join(kinds.get(t, t) for t in c.domain_types) or "none"),
        (
            "Machines",
            ", ".join(c.machines[:TEXT_MACHINES])
            + (
                f" (+{len(c.machines) - TEXT_MACHINES} more)"
                if len(c.machines) > TEXT_MACHINES
                else ""
            ),
        ),
        ("Firmware", ", ".join(c.firmware) or "none reported"),
    ]
    if c.emulator:
        rows.append(("Emulator", f"{c.emulator} ({c.arch}, up to {c.max_vcpus} vCPUs)"))
    return rows


def format_text(status: HostStatus) -> str:
    """Human output: the verdict, its evidence and advice, then one section per source."""
    lines = [status.headline, f"  {status.reason}"]
    if status.advice:
        lines += ["", "What to do:"] + [f"  - {a}" for a in status.advice]
    lines += ["", "CPU", *_rows(cpu_rows(status))]
    lines += ["", "KVM", *_rows(kvm_rows(status))]
    lines += ["", "Measured speed", *_rows(speed_rows(status))]
    for c in status.connections:
        lines += ["", f"libvirt {c.uri}", *_rows(connection_rows(c))]
    return "\n".join(lines) + "\n"
