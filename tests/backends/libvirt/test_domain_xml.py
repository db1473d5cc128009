"""The domain XML builder: what the wizard's choices become, and what it refuses."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vmgui.backends.base import BackendError
from vmgui.backends.libvirt.domain_xml import build_domain_xml
from vmgui.backends.libvirt.storage import disk_sources
from vmgui.model import DiskConfig, VmConfig


def test_full_config_maps_every_choice() -> None:
    cfg = VmConfig(
        name="web 1",
        memory_mib=768,
        vcpus=2,
        iso="/isos/debian.iso",
        disks=[
            DiskConfig("/var/lib/images/web.qcow2"),
            DiskConfig("/data/shared.raw", readonly=True),
        ],
        network="user",
        domain_type="qemu",
    )
    root = ET.fromstring(build_domain_xml(cfg))
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "web 1"
    assert root.find("memory").text == "768" and root.find("memory").get("unit") == "MiB"
    assert root.findtext("vcpu") == "2"
    assert [b.get("dev") for b in root.findall("./os/boot")] == ["cdrom", "hd"]
    disks = root.findall("./devices/disk")
    assert [d.get("device") for d in disks] == ["disk", "disk", "cdrom"]
    assert disks[0].find("driver").get("type") == "qcow2"
    assert disks[0].find("target").get("dev") == "vda"
    assert disks[1].find("readonly") is not None
    assert disks[2].find("source").get("file") == "/isos/debian.iso"
    assert root.find("./devices/interface").get("type") == "user"
    assert root.find("./devices/graphics").get("type") == "vnc"
    assert root.find("./devices/serial").get("type") == "pty"
    assert root.find("./features/acpi") is not None  # graceful shutdown needs ACPI


def test_direct_kernel_boot_and_no_network() -> None:
    cfg = VmConfig(
        name="k", kernel="/k/vmlinuz", initrd="/k/initrd", cmdline="console=ttyS0", network="none"
    )
    root = ET.fromstring(build_domain_xml(cfg))
    assert root.findtext("./os/kernel") == "/k/vmlinuz"
    assert root.findtext("./os/initrd") == "/k/initrd"
    assert root.findtext("./os/cmdline") == "console=ttyS0"
    assert root.find("./os/boot") is None
    assert root.find("./devices/interface") is None


def test_special_characters_are_escaped() -> None:
    xml = build_domain_xml(VmConfig(name="a<b>&'\"", cmdline="x='1' & y", kernel="/k"))
    root = ET.fromstring(xml)
    assert root.findtext("name") == "a<b>&'\""
    assert root.findtext("./os/cmdline") == "x='1' & y"


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        (VmConfig(name=""), "needs a name"),
        (VmConfig(name="a/b"), "not allowed"),
        (VmConfig(name=" padded"), "space"),
        (VmConfig(name="x" * 300), "too long"),
        (VmConfig(name="ok", domain_type="xen"), "Unknown virtualization type"),
        (VmConfig(name="ok", memory_mib=1), "too little"),
        (VmConfig(name="ok", vcpus=0), "at least one"),
        (VmConfig(name="ok", initrd="/i"), "needs a kernel"),
        (VmConfig(name="ok", disks=[DiskConfig("")]), "no file path"),
    ],
)
def test_bad_configs_are_refused_with_a_sentence(cfg: VmConfig, words: str) -> None:
    with pytest.raises(BackendError, match=words) as info:
        build_domain_xml(cfg)
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith(".")


def test_disk_sources_mark_cdroms_and_shared_images() -> None:
    cfg = VmConfig(
        name="d",
        iso="/isos/x.iso",
        disks=[
            DiskConfig("/img/a.raw"),
            DiskConfig("/img/base.raw", readonly=True),
            DiskConfig("/img/b.qcow2"),
        ],
    )
    got = [(d.path, d.device, d.is_cdrom, d.shared) for d in disk_sources(build_domain_xml(cfg))]
    assert got == [
        ("/img/a.raw", "vda", False, False),
        ("/img/base.raw", "vdb", False, True),
        ("/img/b.qcow2", "vdc", False, False),
        ("/isos/x.iso", "hdc", True, True),
    ]


def test_default_disk_folder() -> None:
    from pathlib import Path

    from vmgui.backends.libvirt.domain_xml import default_disk_folder

    assert default_disk_folder("qemu:///system") == "/var/lib/libvirt/images"
    assert default_disk_folder("qemu+ssh://far/session") == "/var/lib/libvirt/images"
    assert default_disk_folder("qemu:///session", Path("/home/u")) == (
        "/home/u/.local/share/libvirt/images"
    )
