"""Which of a VM's disk sources "delete with storage" may remove, and removing exactly those.

The rule (the one virt-manager's delete dialog follows, made stricter): delete only what is an
image — a volume libvirt owns, removed through the storage API, or a regular file on this machine.
Never a device node: a `<disk type='block'>` source such as /dev/sdb or /dev/vg/lv is the host's,
and unlinking it (as root) breaks the host. A volume whose removal would be an unlink of a device
node (a block "volume" of a directory pool) is refused as well. The verdict is computed again at
delete time, so a stale dialog cannot widen it.

Blocking functions: call them on the backend's executor with an open connection.
"""

from __future__ import annotations

import logging
import os
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import libvirt

from vmgui.backends.libvirt import errors
from vmgui.model import StorageItem

log = logging.getLogger(__name__)

#: Pool types whose block volumes are deleted by a managed operation (lvremove), not an unlink.
MANAGED_BLOCK_POOLS = ("logical",)
#: Volume types that are images (files or network images), deletable whatever the pool.
IMAGE_VOLUME_TYPES = (libvirt.VIR_STORAGE_VOL_FILE, libvirt.VIR_STORAGE_VOL_NETWORK)


@dataclass(frozen=True)
class DiskSource:
    """One `<disk>` of a domain XML with a source."""

    path: str  # file or device path; for type='volume' disks "pool/volume" until resolved
    device: str  # target dev ("vda", "hdc")
    disk_type: str  # "file", "block", "volume", "network", "dir"
    is_cdrom: bool
    shared: bool  # read-only or shareable: likely a base image other VMs use
    pool: str = ""
    volume: str = ""


def disk_sources(domain_xml: str) -> list[DiskSource]:
    """Every disk/cdrom/floppy with a source, in XML order."""
    out: list[DiskSource] = []
    for disk in ET.fromstring(domain_xml).findall("./devices/disk"):
        source = disk.find("source")
        if source is None:
            continue
        disk_type = disk.get("type", "file")
        pool, volume = source.get("pool", ""), source.get("volume", "")
        path = source.get("file") or source.get("dev") or source.get("dir") or ""
        if disk_type == "volume" and pool and volume:
            path = f"{pool}/{volume}"
        elif disk_type == "network":
            path = source.get("name", "")
        if not path:
            continue
        target = disk.find("target")
        out.append(
            DiskSource(
                path=path,
                device=target.get("dev", "") if target is not None else "",
                disk_type=disk_type,
                is_cdrom=disk.get("device", "disk") in ("cdrom", "floppy"),
                shared=disk.find("readonly") is not None or disk.find("shareable") is not None,
                pool=pool,
                volume=volume,
            )
        )
    return out


def _volume_of(conn: libvirt.virConnect, src: DiskSource) -> libvirt.virStorageVol | None:
    try:
        if src.disk_type == "volume":
            return conn.storagePoolLookupByName(src.pool).storageVolLookupByName(src.volume)
        return conn.storageVolLookupByPath(src.path)
    except libvirt.libvirtError:
        return None


def _verdict(conn: libvirt.virConnect, src: DiskSource, local: bool) -> tuple[str, bool, str]:
    """(resolved path, deletable, note) for one disk source."""
    if src.disk_type in ("block", "dir"):
        what = "a host device" if src.disk_type == "block" else "a host folder"
        return src.path, False, f"{what}, not an image file: vmgui never deletes it"
    vol = _volume_of(conn, src)
    if vol is not None:
        try:
            path = vol.path()
            vol_type = int(vol.info()[0])
            pool_type = ET.fromstring(vol.storagePoolLookupByVolume().XMLDesc(0)).get("type", "")
        except libvirt.libvirtError as exc:
            return src.path, False, f"its storage pool cannot be read ({errors.clean_message(exc)})"
        if vol_type in IMAGE_VOLUME_TYPES:
            return path, True, ""
        if vol_type == libvirt.VIR_STORAGE_VOL_BLOCK and pool_type in MANAGED_BLOCK_POOLS:
            return path, True, ""
        return path, False, "a device, not an image file: vmgui never deletes it"
    if src.disk_type == "network":
        return src.path, False, "a network disk outside any storage pool"
    if not local:
        return src.path, False, "not in a storage pool of this connection"
    try:
        st = os.lstat(src.path)
    except FileNotFoundError:
        return src.path, False, "the file no longer exists"
    except OSError as exc:
        return src.path, False, f"it cannot be checked ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return src.path, True, ""
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return src.path, False, "a device, not an image file: vmgui never deletes it"
    return src.path, False, "not a regular file: vmgui deletes only image files"


def _paths_used_by_others(conn: libvirt.virConnect, vm_id: str) -> dict[str, list[str]]:
    """path -> names of the *other* VMs that have it as a disk source (inactive definitions)."""
    users: dict[str, list[str]] = {}
    for dom in conn.listAllDomains(0):
        try:
            if dom.UUIDString() == vm_id:
                continue
            flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
            sources = disk_sources(dom.XMLDesc(flags))
            name = dom.name()
        except libvirt.libvirtError:
            continue  # vanished meanwhile
        for src in sources:
            users.setdefault(src.path, []).append(name)
    return users


def storage_items(
    conn: libvirt.virConnect, dom: libvirt.virDomain, local: bool
) -> list[StorageItem]:
    """The delete dialog's list for `dom`: every disk source with its verdict."""
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
    sources = disk_sources(dom.XMLDesc(flags))
    others = _paths_used_by_others(conn, dom.UUIDString()) if sources else {}
    items: list[StorageItem] = []
    for src in sources:
        path, deletable, note = _verdict(conn, src, local)
        if deletable and src.shared and not note:
            note = "read-only or shared: possibly a base image of other VMs"
        used_by = tuple(sorted(set(others.get(path, []) + others.get(src.path, []))))
        items.append(StorageItem(path, src.device, src.is_cdrom, deletable, note, used_by))
    return items


def delete_paths(
    conn: libvirt.virConnect, items: list[StorageItem], chosen: list[str], local: bool
) -> list[str]:
    """Delete the chosen paths that `items` (computed just now) allows; returns failures."""
    by_path = {item.path: item for item in items}
    failed: list[str] = []
    for path in dict.fromkeys(chosen):
        item = by_path.get(path)
        if item is None:
            failed.append(f"{path} (not a disk of this VM)")
        elif not item.deletable:
            failed.append(f"{path} ({item.note})")
        elif why := _delete_one(conn, path, local):
            failed.append(f"{path} ({why})")
    return failed


def _delete_one(conn: libvirt.virConnect, path: str, local: bool) -> str:
    """Delete one image; returns why it failed, or "" on success."""
    try:
        vol = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        vol = None
    if vol is not None:
        try:
            vol.delete(0)
        except libvirt.libvirtError as exc:
            return errors.clean_message(exc)
        return ""
    if not local:
        return "not in a storage pool of this connection"
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # checked again right before the unlink
            return "not a regular file"
        os.remove(path)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        log.info("removing %s failed", path, exc_info=True)
        return exc.strerror or str(exc)
    return ""
