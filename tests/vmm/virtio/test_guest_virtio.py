"""End to end through real /dev/kvm: tests/guests/virtio_guest.c drives our virtio-mmio devices
with its own minimal driver under `vmgui-vmm run`, using ioeventfd kicks and irqfd interrupts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import need_kvm, need_tool
from vmgui.vmm.virtio.block import VirtioBlock

SECTOR_PATTERN = bytes((i * 7 + 3) & 0xFF for i in range(512))
RUN_TIMEOUT = 60


@pytest.fixture(scope="module")
def guest(build_guest: Callable[..., Path]) -> Path:
    need_kvm()
    return build_guest("virtio_guest")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    p = tmp_path / "disk.raw"
    p.write_bytes(os.urandom(512 * 64))
    return p


def vmm(guest: Path, mode: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "vmgui.vmm", "run", "--kernel", str(guest), "--memory", "32M",
           "--framebuffer", "none", "--cmdline", f"vt={mode} irq=1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFF_FFFF
    return h


def irqs_match(out: str) -> bool:
    """One request in flight at a time: every completion gets its own interrupt."""
    m = re.search(r"irqs (\d+) completions (\d+)", out)
    return m is not None and int(m.group(1)) == int(m.group(2)) > 0


def irqs_announce(out: str) -> bool:
    """Requests in flight together (net TX and RX): completions that land before the guest takes
    the first interrupt share it (the irqfd's eventfd counter coalesces, as virtio allows), so at
    least one interrupt and never more than there were completions."""
    m = re.search(r"irqs (\d+) completions (\d+)", out)
    return m is not None and 0 < int(m.group(1)) <= int(m.group(2))


def test_guest_reads_sector0_checksum(guest: Path, image: Path) -> None:
    r = vmm(guest, "blk-read", "--disk", str(image), "--no-rng")
    assert r.returncode == 0, r.stderr
    assert "blk capacity=64 ro=0" in r.stdout
    assert f"blk read status=0 sector0 fnv={fnv1a(image.read_bytes()[:512]):#010x}" in r.stdout
    assert irqs_match(r.stdout), r.stdout  # completion interrupts arrived through the irqfd


def test_guest_write_and_flush_reach_the_file(guest: Path, image: Path) -> None:
    before = image.read_bytes()
    r = vmm(guest, "blk-write", "--disk", str(image))
    assert r.returncode == 0, r.stderr
    assert "blk write status=0 flush status=0" in r.stdout and "blk readback ok" in r.stdout
    after = image.read_bytes()
    assert after[1024:1536] == SECTOR_PATTERN
    assert after[:1024] == before[:1024] and after[1536:] == before[1536:]
    assert irqs_match(r.stdout), r.stdout


def test_guest_write_to_read_only_disk_fails_and_file_is_unchanged(guest: Path, image: Path) -> None:
    before = image.read_bytes()
    r = vmm(guest, "blk-write", "--disk", f"{image},ro")
    assert r.returncode == 0, r.stderr
    assert "blk write status=1 " in r.stdout  # VIRTIO_BLK_S_IOERR
    assert image.read_bytes() == before


def test_image_locked_by_another_vm_is_refused(guest: Path, image: Path) -> None:
    holder = VirtioBlock(str(image))  # what a running VM holds
    try:
        r = vmm(guest, "blk-read", "--disk", str(image))
    finally:
        holder.close()
    assert r.returncode == 1
    assert r.stderr == f"vmgui-vmm: disk image {image} is in use by another VM\n"


def test_a_raw_disk_with_a_qcow2_header_boots_as_raw(guest: Path, tmp_path: Path) -> None:
    """What a guest wrote into its raw disk decides nothing: no refusal, no conversion hint."""
    q = tmp_path / "disk.qcow2"  # even its name does not make it qcow2
    q.write_bytes(b"QFI\xfb\0\0\0\3" + os.urandom(512 * 64 - 8))
    r = vmm(guest, "blk-read", "--disk", str(q))
    assert r.returncode == 0, r.stderr
    assert f"blk read status=0 sector0 fnv={fnv1a(q.read_bytes()[:512]):#010x}" in r.stdout
    assert "qemu-img" not in r.stderr
    r = vmm(guest, "blk-read", "--disk", f"{q},format=qcow2")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "format 'qcow2' is not supported" in r.stderr
    assert "qemu-img" not in r.stderr


def test_bad_disk_option_is_one_line(guest: Path, image: Path) -> None:
    r = vmm(guest, "blk-read", "--disk", f"{image},cache=none")
    assert r.returncode == 1
    assert r.stderr == (f"vmgui-vmm: --disk '{image},cache=none': unknown option 'cache=none' "
                        "(expected ro, format=raw or serial=S)\n")


def test_guest_reads_random_bytes(guest: Path) -> None:
    r = vmm(guest, "rng")
    assert r.returncode == 0, r.stderr
    m = re.search(r"rng got=(\d+) distinct=(\d+)", r.stdout)
    assert m and int(m.group(1)) == 64 and int(m.group(2)) > 30, r.stdout
    assert irqs_match(r.stdout), r.stdout


def test_guest_arp_through_passt(guest: Path) -> None:
    need_tool("passt")
    r = vmm(guest, "net", "--net", "passt", "--no-rng")
    assert r.returncode == 0, r.stderr
    assert "net arp-reply ip=192.0.2.1 ok" in r.stdout, r.stdout
    assert irqs_announce(r.stdout), r.stdout


def test_hostile_request_breaks_only_that_device_until_reset(guest: Path, image: Path) -> None:
    r = vmm(guest, "evil", "--disk", str(image))
    assert r.returncode == 0, r.stderr
    assert "evil blk status=0x0000004f" in r.stdout  # DEVICE_NEEDS_RESET | DRIVER_OK | ...
    assert "rng got=64" in r.stdout  # the other device kept working
    assert f"sector0 fnv={fnv1a(image.read_bytes()[:512]):#010x}" in r.stdout  # reset revived it
    assert "guest address 0xfffff000 is not RAM" in r.stderr
