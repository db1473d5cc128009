"""Domain XML <-> VmSettings: what the Edit dialog reads and changes (pure functions).

Only the elements the dialog owns are touched; everything else in the definition (devices,
features, metadata, whatever virsh edit put there) is kept as it was. libvirt itself validates
the result when it is defined, so its verdict reaches the user as a sentence.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vmgui.backends.base import BackendError
from vmgui.backends.libvirt.domain_xml import INSTALL_NS
from vmgui.model.vm_settings import BOOT_DEVICES, CdromDrive, VmSettings

_KIB_PER_UNIT = {
    "b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
    "m": 1024, "mib": 1024, "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2,
    "gb": 1000**3 / 1024, "t": 1024**3, "tib": 1024**3, "tb": 1000**4 / 1024,
}  # fmt: skip
MIN_MEMORY_MIB = 16
DOMAIN_TYPES = ("kvm", "qemu")


def _memory_mib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip().isdigit():
        return 0
    factor = _KIB_PER_UNIT.get(el.get("unit", "KiB").lower(), 1)
    return int(int((el.text or "0").strip()) * factor) // 1024


def read_settings(inactive_xml: str, autostart: bool) -> VmSettings:
    """The settings a domain's persistent definition holds."""
    root = ET.fromstring(inactive_xml)
    os_el = root.find("os")
    boots = [b.get("dev", "") for b in os_el.findall("boot")] if os_el is not None else []
    if not boots:  # per-device <boot order='n'/> instead of <os><boot>
        ordered = []
        for dev in root.findall("./devices/*"):
            order = dev.find("boot")
            if order is not None and order.get("order", "").isdigit():
                kind = {"disk": "hd", "interface": "network"}.get(dev.tag, "")
                if dev.tag == "disk" and dev.get("device") == "cdrom":
                    kind = "cdrom"
                if kind:
                    ordered.append((int(order.get("order", "0")), kind))
        boots = list(dict.fromkeys(kind for _n, kind in sorted(ordered)))
    cdroms = []
    for disk in root.findall("./devices/disk"):
        if disk.get("device") != "cdrom":
            continue
        target = disk.find("target")
        source = disk.find("source")
        media = (source.get("file") or source.get("dev") or "") if source is not None else ""
        cdroms.append(CdromDrive(target.get("dev", "") if target is not None else "", media))
    vcpu = (root.findtext("vcpu") or "1").strip()
    return VmSettings(
        memory_mib=_memory_mib(root.find("memory")),
        vcpus=int(vcpu) if vcpu.isdigit() else 1,
        boot_order=tuple(b for b in boots if b in BOOT_DEVICES),
        cdroms=tuple(cdroms),
        autostart=autostart,
        domain_type=root.get("type", "kvm"),
        kernel=(root.findtext("os/kernel") or "").strip(),
        initrd=(root.findtext("os/initrd") or "").strip(),
        cmdline=(root.findtext("os/cmdline") or "").strip(),
    )


def check_settings(s: VmSettings, current_type: str = "") -> None:
    """Refuse what cannot be right before libvirt sees it (one sentence each)."""
    if s.memory_mib < MIN_MEMORY_MIB:
        raise BackendError(f"{s.memory_mib} MiB of memory is too little (at least 16 MiB).")
    if s.vcpus < 1:
        raise BackendError("A VM needs at least one virtual CPU.")
    if s.domain_type not in DOMAIN_TYPES and s.domain_type != current_type:
        raise BackendError(f"Unknown virtualization type '{s.domain_type}' (use 'kvm' or 'qemu').")
    unknown = [b for b in s.boot_order if b not in BOOT_DEVICES]
    if unknown:
        raise BackendError(f"Unknown boot device '{unknown[0]}'.")
    if not s.kernel and (s.initrd or s.cmdline):
        raise BackendError("An initrd or kernel command line needs a kernel image as well.")
    if not s.kernel and not s.boot_order:
        raise BackendError("Choose at least one boot device.")


def _set_text(parent: ET.Element, tag: str, text: str, before: str | None = None) -> None:
    """Set `parent/tag` to `text`, creating it (after `before`'s siblings) or removing it if ""."""
    el = parent.find(tag)
    if not text:
        if el is not None:
            parent.remove(el)
        return
    if el is None:
        el = ET.Element(tag)
        anchor = parent.find(before) if before else None
        index = list(parent).index(anchor) + 1 if anchor is not None else len(parent)
        parent.insert(index, el)
    el.text = text


def cdrom_source_xml(disk: ET.Element, media: str) -> None:
    """Insert (`media` a path) or eject (`media` "") the media of one cdrom <disk>."""
    source = disk.find("source")
    if source is not None:
        disk.remove(source)
    if media:
        disk.set("type", "file")
        source = ET.Element("source", {"file": media})
        driver = disk.find("driver")
        disk.insert(list(disk).index(driver) + 1 if driver is not None else 0, source)


def apply_settings(inactive_xml: str, s: VmSettings) -> str:
    """`inactive_xml` with the dialog's settings applied (autostart is not in the XML)."""
    root = ET.fromstring(inactive_xml)
    check_settings(s, root.get("type", ""))
    root.set("type", s.domain_type)
    metadata = root.find("metadata")
    marker = metadata.find(f"{{{INSTALL_NS}}}install") if metadata is not None else None
    if metadata is not None and marker is not None:
        metadata.remove(marker)  # the user now owns the boot order: no more automatic switch
    kib = str(s.memory_mib * 1024)
    for tag in ("memory", "currentMemory"):
        el = root.find(tag)
        if el is None:
            el = ET.SubElement(root, tag)
        el.text = kib
        el.set("unit", "KiB")
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = ET.SubElement(root, "vcpu")
    vcpu.text = str(s.vcpus)
    vcpu.attrib.pop("current", None)

    os_el = root.find("os")
    if os_el is None:
        os_el = ET.SubElement(root, "os")
    _set_text(os_el, "kernel", s.kernel, before="type")
    _set_text(os_el, "initrd", s.initrd, before="kernel")
    _set_text(os_el, "cmdline", s.cmdline, before="initrd")
    for boot in os_el.findall("boot"):
        os_el.remove(boot)
    for dev in root.findall("./devices/*"):
        order = dev.find("boot")
        if order is not None:
            dev.remove(order)  # libvirt refuses per-device order together with <os><boot>
    if not s.kernel:
        after = max(
            (i for i, el in enumerate(os_el) if el.tag in ("type", "loader", "nvram")), default=-1
        )
        for offset, dev_name in enumerate(s.boot_order):
            os_el.insert(after + 1 + offset, ET.Element("boot", {"dev": dev_name}))

    drives = {c.device: c.media for c in s.cdroms}
    for disk in root.findall("./devices/disk"):
        target = disk.find("target")
        dev_name = target.get("dev", "") if target is not None else ""
        if disk.get("device") == "cdrom" and dev_name in drives:
            cdrom_source_xml(disk, drives[dev_name])
    return ET.tostring(root, encoding="unicode")


def cdrom_device_xml(inactive_xml: str, drive: CdromDrive) -> str | None:
    """The <disk> XML of one cdrom with `drive.media`, for a live media change (None: no drive)."""
    for disk in ET.fromstring(inactive_xml).findall("./devices/disk"):
        target = disk.find("target")
        if (
            disk.get("device") == "cdrom"
            and target is not None
            and (target.get("dev") == drive.device)
        ):
            cdrom_source_xml(disk, drive.media)
            return ET.tostring(disk, encoding="unicode")
    return None


def settings_need_restart(old: VmSettings, new: VmSettings) -> bool:
    """True when a running VM only gets `new` at its next start (everything but CD media)."""
    fields = ("memory_mib", "vcpus", "boot_order", "domain_type", "kernel", "initrd", "cmdline")
    return any(getattr(old, f) != getattr(new, f) for f in fields)
