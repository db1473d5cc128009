"""Defining and deleting VMs with their disk images (blocking calls, run in the executor).

Which storage may be deleted, and deleting it, is storage.py's part.

A definition either completes or leaves nothing behind: images created for it are removed again
if `defineXML` fails. Images go through the storage pool that holds their folder when there is
one (remote hosts need that), else, on a local connection only, straight to the file system.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable

import libvirt

from vmgui.backends.base import BackendError, is_local_uri
from vmgui.backends.libvirt import domain_xml, storage
from vmgui.backends.libvirt.listing import info_blocking
from vmgui.model import VmConfig, VmInfo

log = logging.getLogger(__name__)

_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)
#: Drivers that refuse the flags above (test:///, old daemons): plain undefine() instead.
_UNDEFINE_FLAGS_REFUSED = (
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_INVALID_ARG,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
)


def define_blocking(conn: libvirt.virConnect, uri: str, config: VmConfig, xml: str) -> VmInfo:
    created: list[Callable[[], None]] = []  # undo steps for images made here
    try:
        for disk in config.disks:
            if disk.size_bytes > 0:
                created.append(create_image_blocking(conn, uri, disk.path, disk.size_bytes))
        dom = conn.defineXML(xml)
    except BaseException:
        for undo in reversed(created):
            try:
                undo()
            except Exception:  # the define's own error is what the user must see
                log.warning("could not remove an image made for %s", config.name, exc_info=True)
        raise
    return info_blocking(conn, uri, dom.UUIDString())


def create_image_blocking(
    conn: libvirt.virConnect, uri: str, path: str, size_bytes: int
) -> Callable[[], None]:
    """Create a raw image in the storage pool holding `path`'s folder, else locally.

    Returns how to remove it again.
    """
    with contextlib.suppress(libvirt.libvirtError):
        conn.storageVolLookupByPath(path)
        raise BackendError(f"The disk image {path} already exists; choose another file name.")
    folder, name = os.path.split(path)
    with contextlib.suppress(libvirt.libvirtError):
        for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            target = domain_xml.pool_target_path(pool.XMLDesc(0))
            if target and os.path.realpath(target) == os.path.realpath(folder):
                vol = pool.createXML(domain_xml.raw_volume_xml(name, size_bytes), 0)
                return lambda: vol.delete(0)
    if not is_local_uri(uri):
        raise BackendError(f"Cannot create {path}: no storage pool on {uri} holds that folder.")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise BackendError(
            f"The disk image {path} already exists; choose another file name."
        ) from None
    except OSError as exc:
        raise BackendError(f"Cannot create the disk image {path}: {exc.strerror}.") from None
    try:
        os.ftruncate(fd, size_bytes)
    finally:
        os.close(fd)
    return lambda: os.remove(path)


def delete_blocking(conn: libvirt.virConnect, uri: str, vm_id: str, paths: list[str]) -> None:
    """Undefine the VM, then remove those of `paths` its storage list calls deletable."""
    dom = conn.lookupByUUIDString(vm_id)
    name = dom.name()
    if dom.isActive():
        raise BackendError(f"Cannot delete '{name}' while it is running: shut it down first.")
    local = is_local_uri(uri)
    items = storage.storage_items(conn, dom, local) if paths else []
    try:
        dom.undefineFlags(_UNDEFINE_FLAGS)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in _UNDEFINE_FLAGS_REFUSED:
            raise
        dom.undefine()
    failed = storage.delete_paths(conn, items, paths, local)
    if failed:
        raise BackendError(
            f"'{name}' was deleted, but not all of its storage: " + "; ".join(failed) + "."
        )
