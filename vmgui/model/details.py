"""What the details view and the New VM wizard learn about a VM or a connection, as plain data.

Each backend fills these from its own description (libvirt: domain XML; built-in: its definition
files), so the UI never parses a hypervisor's format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HardwareRow:
    """One line of the details view's Hardware tab: "Disk vda" - "disk /var/lib/...img"."""

    device: str
    description: str


@dataclass(frozen=True)
class NewVmDefaults:
    """What the New VM wizard proposes for a connection before the user changes anything."""

    #: Where new disk images go (the default storage pool's folder, or vmgui's data dir).
    disk_folder: str
    #: The only virtualization type this connection runs ("kvm" for the built-in VMM), or ""
    #: when the connection's capabilities decide (libvirt: kvm or qemu).
    fixed_domain_type: str = ""
