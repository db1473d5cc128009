"""What the Edit dialog changes on an existing VM (plain data, the same for every backend)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Boot devices in the words libvirt's <boot dev=...> uses; the dialog shows BOOT_DEVICE_LABELS.
BOOT_DEVICES = ("hd", "cdrom", "network")
BOOT_DEVICE_LABELS = {"hd": "Hard disk", "cdrom": "CD-ROM", "network": "Network (PXE)"}


@dataclass(frozen=True)
class CdromDrive:
    """One CD-ROM drive; `media` is the inserted image's path, "" when empty (ejected)."""

    device: str  # guest-visible target, e.g. "hdc"
    media: str = ""


@dataclass(frozen=True)
class VmSettings:
    """The settings of the VM's next start (for a running VM, its persistent definition).

    `boot_order` lists enabled boot devices first to last (empty for direct kernel boot, which
    `kernel` selects). `domain_types` is what the connection offers, for the type choice.
    """

    memory_mib: int
    vcpus: int
    boot_order: tuple[str, ...] = ()
    cdroms: tuple[CdromDrive, ...] = ()
    autostart: bool = False
    domain_type: str = "kvm"
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    domain_types: tuple[str, ...] = field(default=("kvm", "qemu"))

    @property
    def direct_boot(self) -> bool:
        return bool(self.kernel)


@dataclass(frozen=True)
class ApplyResult:
    """What `apply_settings` did: saved for the next start, and whether a restart is pending."""

    restart_needed: bool = False  # running VM: changes other than CD media wait for next start
