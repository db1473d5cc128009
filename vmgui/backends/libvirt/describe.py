"""What the details view shows of a libvirt VM, read from its domain XML (pure parsing).

The UI gets `HardwareRow`s and a domain type, never the XML's structure; anything missing or
malformed is skipped, because a description is informative, not an action.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

from vmgui.model.details import HardwareRow

_MEMORY_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2,
                 "g": 1024**3, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
MIB = 1024**2


def domain_type_of(xml: str) -> str:
    """The `type` of a libvirt domain XML ("kvm", "qemu", ...); "" when it is not one."""
    with contextlib.suppress(ET.ParseError):
        root = ET.fromstring(xml)
        if root.tag == "domain":
            return root.get("type", "")
    return ""


def hardware_rows(xml: str) -> list[HardwareRow]:
    """One row per device of a domain XML; tolerant of anything missing."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return []
    rows: list[HardwareRow] = []
    os_type = root.find("os/type")
    if os_type is not None:
        rows.append(HardwareRow("Machine", " ".join(filter(None, [
            root.get("type", ""), os_type.get("arch", ""), os_type.get("machine", ""),
            (os_type.text or "").strip()]))))
    vcpu = root.findtext("vcpu")
    if vcpu:
        rows.append(HardwareRow("Processors", f"{vcpu.strip()} vCPU"))
    mem = root.find("memory")
    if mem is not None and (mem.text or "").strip().isdigit():
        factor = _MEMORY_UNITS.get(mem.get("unit", "KiB").lower(), 1024)
        rows.append(HardwareRow("Memory", f"{int(mem.text or 0) * factor // MIB:,} MiB"))
    kernel = root.findtext("os/kernel")
    if kernel:
        rows.append(HardwareRow("Direct kernel boot", kernel.strip()))
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        source = disk.find("source")
        where = ""
        if source is not None:
            where = source.get("file") or source.get("dev") or source.get("name") or ""
        dev = target.get("dev", "?") if target is not None else "?"
        rows.append(HardwareRow(f"Disk {dev}", f"{disk.get('device', 'disk')} {where}".strip()))
    for nic in root.findall("devices/interface"):
        mac = nic.find("mac")
        model = nic.find("model")
        parts = [nic.get("type", "")]
        if model is not None:
            parts.append(model.get("type", ""))
        if mac is not None:
            parts.append(mac.get("address", ""))
        rows.append(HardwareRow("Network", " ".join(p for p in parts if p)))
    for gfx in root.findall("devices/graphics"):
        rows.append(HardwareRow("Display", gfx.get("type", "").upper()))
    serials = root.findall("devices/serial")
    if serials:
        rows.append(HardwareRow("Serial ports", str(len(serials))))
    return rows
