"""'Delete with storage' removes images only: never a device node, and it says why."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.backends.libvirt.helpers import dir_pool, remove_domain
from tests.fixtures.libvirtd import PrivateLibvirtd
from vmgui.backends.base import BackendError
from vmgui.backends.libvirt import LibvirtBackend
from vmgui.model import DiskConfig, VmConfig

pytestmark = [pytest.mark.libvirtd]


@pytest.fixture
def device_node() -> Iterator[Path]:
    """A real loop device when losetup works here, else a character device node in a tmp dir."""
    folder = Path(tempfile.mkdtemp(prefix="vmgui-dev-"))
    backing = folder / "backing.img"
    backing.write_bytes(b"\0" * 4096)
    loop = ""
    if shutil.which("losetup") and os.geteuid() == 0:
        done = subprocess.run(
            ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=False
        )
        loop = done.stdout.strip() if done.returncode == 0 else ""
    if loop:
        path = Path(loop)
    else:
        path = folder / "node"
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # what /dev/null is
    try:
        yield path
    finally:
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _domain_with_disks(name: str, image: Path, node: Path) -> str:
    return f"""<domain type='qemu'><name>{name}</name><uuid>{uuid.uuid4()}</uuid>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{image}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/>
      <source dev='{node}'/><target dev='vdb' bus='virtio'/></disk>
  </devices></domain>"""


def test_delete_with_storage_keeps_device_nodes_and_says_why(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    vm_name: str,
    device_node: Path,
) -> None:
    image = libvirtd.home / f"{vm_name}.raw"
    image.write_bytes(b"\0" * 4096)
    conn = libvirt.open(libvirtd.uri)
    try:
        vm_id = conn.defineXML(_domain_with_disks(vm_name, image, device_node)).UUIDString()
        # a second VM sharing the image: the dialog must warn about it
        conn.defineXML(_domain_with_disks(vm_name + "-other", image, Path("/nonexistent/x")))
    finally:
        conn.close()

    async def scenario() -> None:
        items = {i.path: i for i in await backend.list_storage(vm_id)}
        assert items[str(image)].deletable and items[str(image)].device == "vda"
        assert items[str(image)].used_by == (vm_name + "-other",)
        assert not items[str(image)].suggested  # shared: not ticked by default
        node = items[str(device_node)]
        assert not node.deletable and not node.suggested
        assert "device" in node.note and "never deletes" in node.note

        with pytest.raises(BackendError) as err:
            await backend.delete(vm_id, [str(image), str(device_node)])
        msg = str(err.value)
        assert str(device_node) in msg and "device" in msg and "\n" not in msg
        assert vm_id not in {v.vm_id for v in await backend.list_vms()}

    try:
        qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))
        mode = os.stat(device_node).st_mode  # still there, still a device
        assert stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
        assert not image.exists()  # the image file was deleted
    finally:
        remove_domain(libvirtd.uri, vm_name + "-other")
        image.unlink(missing_ok=True)


def test_new_disk_in_a_pool_folder_is_sparse(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    vm_name: str,
) -> None:
    """The wizard promises "space is allocated as the guest writes": the pool must not fill it."""
    with dir_pool(libvirtd.uri, libvirtd.home, vm_name) as (conn, pool_dir):
        image = pool_dir / f"{vm_name}.raw"
        size = 64 << 20

        async def scenario() -> None:
            cfg = VmConfig(name=vm_name, memory_mib=64, domain_type="qemu", network="none",
                           disks=[DiskConfig(str(image), size_bytes=size)])
            info = await backend.define(cfg)
            st = image.stat()
            assert st.st_size == size
            assert st.st_blocks * 512 < size // 16  # sparse: (almost) nothing allocated yet
            await backend.delete(info.vm_id, [str(image)])

        qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))
