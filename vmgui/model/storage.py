"""What "delete with storage" may remove: one entry per disk source of a VM (plain data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StorageItem:
    """A disk's file or volume as the delete dialog lists it, each with its own checkbox.

    `deletable` is the backend's verdict (a libvirt-owned volume or a regular image file; never a
    device node); `note` says why not, or what to mind. `suggested` is the checkbox's default:
    deletable, a hard disk, and used by no other VM.
    """

    path: str
    device: str = ""  # guest-visible target, e.g. "vda"
    is_cdrom: bool = False
    deletable: bool = False
    note: str = ""
    used_by: tuple[str, ...] = ()  # names of other VMs whose disks use the same path

    @property
    def suggested(self) -> bool:
        return self.deletable and not self.used_by and not self.is_cdrom and not self.note
