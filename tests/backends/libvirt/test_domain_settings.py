"""Domain XML <-> VmSettings: read what is there, change only what the dialog owns."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from vmgui.backends.base import BackendError
from vmgui.backends.libvirt.domain_settings import apply_settings, read_settings
from vmgui.backends.libvirt.domain_xml import after_install_boot, build_domain_xml
from vmgui.model import DiskConfig, VmConfig

PER_DEVICE_BOOT = """<domain type='kvm'><name>p</name><memory unit='GiB'>2</memory>
<vcpu current='1'>4</vcpu><os><type arch='x86_64'>hvm</type></os>
<devices>
 <disk type='file' device='cdrom'><source file='/i.iso'/><target dev='sda'/><boot order='2'/></disk>
 <disk type='file' device='disk'><source file='/d.img'/><target dev='vda'/><boot order='1'/></disk>
 <interface type='user'><model type='virtio'/></interface>
 <sound model='ich9'/>
</devices></domain>"""


def test_reads_per_device_boot_order_and_units() -> None:
    s = read_settings(PER_DEVICE_BOOT, autostart=True)
    assert (s.memory_mib, s.vcpus, s.boot_order) == (2048, 4, ("hd", "cdrom"))
    assert [(c.device, c.media) for c in s.cdroms] == [("sda", "/i.iso")]
    assert s.autostart and s.domain_type == "kvm" and not s.direct_boot


def test_apply_replaces_per_device_order_and_keeps_the_rest() -> None:
    s = read_settings(PER_DEVICE_BOOT, autostart=False)
    out = ET.fromstring(apply_settings(PER_DEVICE_BOOT, replace(
        s, boot_order=("cdrom", "hd"), memory_mib=512, vcpus=2, domain_type="qemu")))
    assert out.get("type") == "qemu"
    assert [b.get("dev") for b in out.findall("os/boot")] == ["cdrom", "hd"]
    assert out.findall("devices/*/boot") == []  # libvirt refuses both kinds together
    assert out.find("vcpu").get("current") is None and out.findtext("vcpu") == "2"  # type: ignore[union-attr]
    assert out.find("memory").text == "524288" and out.find("currentMemory").text == "524288"  # type: ignore[union-attr]
    assert out.find("devices/sound") is not None  # untouched


def test_direct_boot_fields_and_the_install_marker() -> None:
    cfg = VmConfig(name="k", kernel="/boot/vmlinuz", cmdline="console=ttyS0")
    s = read_settings(build_domain_xml(cfg), autostart=False)
    assert s.direct_boot and s.boot_order == () and s.cmdline == "console=ttyS0"
    out = ET.fromstring(apply_settings(build_domain_xml(cfg), replace(s, initrd="/boot/initrd")))
    assert [e.tag for e in out.find("os")] == ["type", "kernel", "initrd", "cmdline"]  # type: ignore[union-attr]
    with pytest.raises(BackendError, match="needs a kernel"):
        apply_settings(build_domain_xml(cfg), replace(s, kernel=""))

    iso = build_domain_xml(VmConfig(name="i", iso="/i.iso", disks=[DiskConfig("/d.img")]))
    edited = apply_settings(iso, replace(read_settings(iso, False), boot_order=("cdrom", "hd")))
    assert after_install_boot(edited) is None  # the user chose the order: no automatic switch
    assert after_install_boot(iso) is not None
