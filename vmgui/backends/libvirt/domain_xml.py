"""VmConfig -> libvirt domain XML, and small readers of libvirt XML (pure functions).

Kept free of any connection so the wizard's choices can be checked in unit tests, and so bad
input is refused before anything is created on the host.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

from vmgui.backends.base import BackendError, is_local_uri
from vmgui.model import VmConfig

DOMAIN_TYPES = ("kvm", "qemu")
MAX_NAME_LENGTH = 200
MAX_DISKS = 26  # vda..vdz
#: Namespace of our <metadata> element marking a definition whose install media boots once.
INSTALL_NS = "urn:x-vmgui:install:1"
_FORBIDDEN_NAME_CHARS = "/\\"


SYSTEM_IMAGES = "/var/lib/libvirt/images"


def default_disk_folder(uri: str, home: Path | None = None) -> str:
    """Where libvirt's default storage pool keeps images for this kind of connection."""
    path = urlsplit(uri).path.rstrip("/")
    if path.endswith("/system") or not is_local_uri(uri):
        return SYSTEM_IMAGES
    base = home if home is not None else Path.home()
    return str(base / ".local" / "share" / "libvirt" / "images")


def check_name(name: str) -> None:
    """Refuse names libvirt or the file system would reject, with a sentence saying why."""
    if not name or not name.strip():
        raise BackendError("A VM needs a name.")
    if name != name.strip():
        raise BackendError(f"The VM name '{name}' starts or ends with a space.")
    if len(name) > MAX_NAME_LENGTH:
        raise BackendError(
            f"The VM name is too long ({len(name)} characters, at most {MAX_NAME_LENGTH})."
        )
    bad = sorted({c for c in name if c in _FORBIDDEN_NAME_CHARS or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise BackendError(
            f"The VM name '{name}' contains characters that are not allowed: {shown}."
        )


def _disk_format(path: str) -> str:
    return "qcow2" if path.lower().endswith(".qcow2") else "raw"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def build_domain_xml(config: VmConfig, domain_uuid: str | None = None) -> str:
    """The domain XML for `config`; raises BackendError for values libvirt would refuse."""
    check_name(config.name)
    if config.domain_type not in DOMAIN_TYPES:
        raise BackendError(
            f"Unknown virtualization type '{config.domain_type}' (use 'kvm' or 'qemu')."
        )
    if config.memory_mib < 16:
        raise BackendError(f"{config.memory_mib} MiB of memory is too little (at least 16 MiB).")
    if config.vcpus < 1:
        raise BackendError("A VM needs at least one virtual CPU.")
    if len(config.disks) > MAX_DISKS:
        raise BackendError(f"At most {MAX_DISKS} disks are supported.")
    if (config.initrd or config.cmdline) and not config.kernel:
        raise BackendError("An initrd or kernel command line needs a kernel image as well.")

    dom = ET.Element("domain", {"type": config.domain_type})
    _sub(dom, "name", config.name)
    if domain_uuid:
        _sub(dom, "uuid", domain_uuid)
    _sub(dom, "memory", str(config.memory_mib), unit="MiB")
    _sub(dom, "currentMemory", str(config.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(config.vcpus))

    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    if config.kernel:
        _sub(os_el, "kernel", config.kernel)
        if config.initrd:
            _sub(os_el, "initrd", config.initrd)
        if config.cmdline:
            _sub(os_el, "cmdline", config.cmdline)
    else:
        if config.iso:
            _sub(os_el, "boot", dev="cdrom")
            # The first start boots the installer; `after_install_boot` then puts the disk first.
            metadata = _sub(dom, "metadata")
            ET.SubElement(metadata, f"{{{INSTALL_NS}}}install", {"boot": "once"})
        _sub(os_el, "boot", dev="hd")

    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    for index, disk in enumerate(config.disks):
        if not disk.path:
            raise BackendError(f"Disk {index + 1} has no file path.")
        d = _sub(devices, "disk", type="file", device="disk")
        _sub(d, "driver", name="qemu", type=_disk_format(disk.path))
        _sub(d, "source", file=disk.path)
        _sub(d, "target", dev=f"vd{chr(ord('a') + index)}", bus="virtio")
        if disk.readonly:
            _sub(d, "readonly")
    if config.iso:
        cd = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cd, "driver", name="qemu", type="raw")
        _sub(cd, "source", file=config.iso)
        _sub(cd, "target", dev="hdc", bus="ide")
        _sub(cd, "readonly")

    if config.network == "user":
        nic = _sub(devices, "interface", type="user")
        _sub(nic, "model", type="virtio")
    elif config.network and config.network != "none":
        nic = _sub(devices, "interface", type="network")
        _sub(nic, "source", network=config.network)
        _sub(nic, "model", type="virtio")

    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "input", type="tablet", bus="usb")
    _sub(devices, "graphics", type="vnc", port="-1", autoport="yes", listen="127.0.0.1")
    video = _sub(devices, "video")
    _sub(video, "model", type="vga", vram="16384", heads="1")

    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


def after_install_boot(inactive_xml: str) -> str | None:
    """The definition for the starts after the first one of an ISO install, or None.

    Like virt-install: the media booted once; from now on the disk boots first and the CD-ROM
    stays attached (second in the boot order) until the user ejects it.
    """
    root = ET.fromstring(inactive_xml)
    metadata = root.find("metadata")
    marker = metadata.find(f"{{{INSTALL_NS}}}install") if metadata is not None else None
    if metadata is None or marker is None:
        return None
    metadata.remove(marker)
    if len(metadata) == 0:
        root.remove(metadata)
    os_el = root.find("os")
    if os_el is not None:
        boots = os_el.findall("boot")
        devs = [b.get("dev", "") for b in boots]
        if "hd" in devs:
            order = ["hd"] + [d for d in devs if d != "hd"]
            for boot, dev in zip(boots, order, strict=True):
                boot.set("dev", dev)
    return ET.tostring(root, encoding="unicode")


def domain_name(domain_xml: str) -> str:
    return ET.fromstring(domain_xml).findtext("name", default="")


def pool_target_path(pool_xml: str) -> str:
    """The folder a storage pool keeps its volumes in ("" for pools without one)."""
    return ET.fromstring(pool_xml).findtext("./target/path", default="")


def raw_volume_xml(name: str, size_bytes: int) -> str:
    """A sparse raw volume: without <allocation> libvirt allocates the whole capacity."""
    vol = ET.Element("volume")
    _sub(vol, "name", name)
    _sub(vol, "allocation", "0", unit="bytes")
    _sub(vol, "capacity", str(size_bytes), unit="bytes")
    target = _sub(vol, "target")
    _sub(target, "format", type="raw")
    return ET.tostring(vol, encoding="unicode")
