"""describe.py: the details view's rows and the VM's domain type, read from domain XML."""

from __future__ import annotations

from vmgui.backends.libvirt.describe import domain_type_of, hardware_rows
from vmgui.model.details import HardwareRow

VM_XML = """<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><vcpu>2</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>/boot/vmlinuz</kernel></os>
<devices><disk type='file' device='disk'><source file='/img/a.img'/><target dev='vda'/></disk>
<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
<graphics type='vnc'/><serial type='pty'/></devices></domain>"""


def test_domain_type_of() -> None:
    assert domain_type_of(VM_XML) == "kvm"
    assert domain_type_of("<not xml") == ""
    assert domain_type_of("<network type='kvm'/>") == ""


def test_hardware_rows() -> None:
    assert hardware_rows(VM_XML) == [
        HardwareRow("Machine", "kvm x86_64 pc hvm"),
        HardwareRow("Processors", "2 vCPU"),
        HardwareRow("Memory", "64 MiB"),
        HardwareRow("Direct kernel boot", "/boot/vmlinuz"),
        HardwareRow("Disk vda", "disk /img/a.img"),
        HardwareRow("Network", "user virtio 52:54:00:00:00:01"),
        HardwareRow("Display", "VNC"),
        HardwareRow("Serial ports", "1"),
    ]
    assert hardware_rows("<garbled") == []
