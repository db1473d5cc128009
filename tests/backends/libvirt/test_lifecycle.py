"""A real TCG guest through the backend: every action, states following lifecycle events."""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.backends.libvirt.helpers import (
    EventRecorder,
    dir_pool,
    libvirt_state,
    remove_domain,
    vm_removed,
    vm_state_is,
)
from tests.fixtures.libvirtd import (
    GUEST_POWEROFF_MARKER,
    GUEST_READY_MARKER,
    PrivateLibvirtd,
    TcgDomainXml,
)
from vmgui.backends.base import BackendError, VmChanged
from vmgui.backends.libvirt import LibvirtBackend
from vmgui.model import DiskConfig, VmConfig, VmState

pytestmark = [pytest.mark.libvirtd, pytest.mark.slow]
EVENT_TIMEOUT_S = 15.0


def test_full_lifecycle_of_a_tcg_guest(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd_uri: str,
    vm_name: str,
    tcg_guest_files: tuple[Path, Path],
) -> None:
    kernel, initrd = tcg_guest_files

    async def scenario() -> None:
        rec = await EventRecorder(backend).start()
        cfg = VmConfig(
            name=vm_name,
            memory_mib=128,
            kernel=str(kernel),
            initrd=str(initrd),
            cmdline="console=ttyS0 quiet panic=-1 mitigations=off nokaslr rdinit=/init",
            network="none",
            domain_type="qemu",
        )
        info = await backend.define(cfg)
        vm = info.vm_id
        assert info.state is VmState.SHUTOFF and info.memory_kib == 128 * 1024
        await rec.wait_for(vm_state_is(vm, VmState.SHUTOFF), EVENT_TIMEOUT_S)
        assert any(v.vm_id == vm for v in await backend.list_vms())

        await backend.start(vm)
        await rec.wait_for(vm_state_is(vm, VmState.RUNNING), EVENT_TIMEOUT_S)
        assert libvirt_state(libvirtd_uri, vm) == libvirt.VIR_DOMAIN_RUNNING

        mark = rec.mark()
        await backend.pause(vm)
        await rec.wait_for(vm_state_is(vm, VmState.PAUSED), EVENT_TIMEOUT_S, after=mark)
        assert libvirt_state(libvirtd_uri, vm) == libvirt.VIR_DOMAIN_PAUSED

        samples = await backend.sample_stats()
        assert any(s.vm_id == vm and s.cpu_time_ns > 0 for s in samples)

        mark = rec.mark()
        await backend.resume(vm)
        await rec.wait_for(vm_state_is(vm, VmState.RUNNING), EVENT_TIMEOUT_S, after=mark)

        # Graceful: the guest's /init powers off on the ACPI power button, once it has loaded
        # button.ko; press it every 2 s until the guest itself stops ("shut down by the guest").
        mark = rec.mark()
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(BackendError):  # it may have just powered off
                await backend.shutdown(vm)
            try:
                ev = await rec.wait_for(vm_state_is(vm, VmState.SHUTOFF), 2.0, after=mark)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "guest never powered off via ACPI"
        assert isinstance(ev, VmChanged) and ev.vm.reason == "shut down by the guest"

        await backend.start(vm)
        await rec.wait_for(vm_state_is(vm, VmState.RUNNING), EVENT_TIMEOUT_S, after=mark)
        mark = rec.mark()
        await backend.force_off(vm)
        ev = await rec.wait_for(vm_state_is(vm, VmState.SHUTOFF), EVENT_TIMEOUT_S, after=mark)
        assert isinstance(ev, VmChanged) and ev.vm.reason == "forced off"
        assert libvirt_state(libvirtd_uri, vm) == libvirt.VIR_DOMAIN_SHUTOFF

        xml = await backend.details_xml(vm)
        assert f"<name>{vm_name}</name>" in xml

        await backend.delete(vm)
        await rec.wait_for(vm_removed(vm), EVENT_TIMEOUT_S)
        assert libvirt_state(libvirtd_uri, vm) is None
        await rec.stop()

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 120))


def test_reboot_reset_and_graceful_shutdown_seen_on_the_guest_console(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    tcg_domain_xml: TcgDomainXml,
    vm_name: str,
) -> None:
    """The tcg_domain_xml guest (serial console in a file) rebooted by ACPI, reset without
    being asked, and shut down by ACPI."""
    log = libvirtd.home / f"{vm_name}.serial"
    conn = libvirt.open(libvirtd.uri)
    try:
        vm = conn.defineXML(tcg_domain_xml(vm_name, serial_log=log)).UUIDString()
    finally:
        conn.close()

    async def boots_seen(count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count(GUEST_READY_MARKER) >= count:
                return
            assert time.monotonic() < deadline, f"guest console after {timeout} s: {text[-300:]!r}"
            await asyncio.sleep(0.2)

    async def scenario() -> None:
        rec = await EventRecorder(backend).start()
        await backend.start(vm)
        await boots_seen(1, 60)
        await backend.reboot(vm)  # ACPI: the guest powers off, libvirt starts it again
        await boots_seen(2, 60)
        assert libvirt_state(libvirtd.uri, vm) == libvirt.VIR_DOMAIN_RUNNING
        asked = log.read_text(errors="replace").count(GUEST_POWEROFF_MARKER)
        assert asked >= 1  # the reboot went through the guest
        await backend.reset(vm)  # the reset button: the guest is not asked
        await boots_seen(3, 60)
        assert log.read_text(errors="replace").count(GUEST_POWEROFF_MARKER) == asked
        assert libvirt_state(libvirtd.uri, vm) == libvirt.VIR_DOMAIN_RUNNING
        mark = rec.mark()
        await backend.shutdown(vm)
        ev = await rec.wait_for(vm_state_is(vm, VmState.SHUTOFF), 30, after=mark)
        assert isinstance(ev, VmChanged) and ev.vm.reason == "shut down by the guest"
        assert GUEST_POWEROFF_MARKER in log.read_text(errors="replace")
        await rec.stop()

    qt_loop.run_until_complete(asyncio.wait_for(scenario(), 150))


def test_iso_install_boots_the_media_once_then_the_disk(
    qt_loop: asyncio.AbstractEventLoop,
    backend: LibvirtBackend,
    libvirtd: PrivateLibvirtd,
    vm_name: str,
) -> None:
    """virt-install's behaviour: the first start boots the ISO, later starts boot the disk."""
    with dir_pool(libvirtd.uri, libvirtd.home, vm_name) as (conn, pool_dir):
        iso = libvirtd.home / f"{vm_name}.iso"
        iso.write_bytes(b"\0" * 65536)
        iso.chmod(0o644)
        disk = pool_dir / f"{vm_name}.raw"

        def boot_order(flags: int) -> list[str]:
            root = ET.fromstring(conn.lookupByName(vm_name).XMLDesc(flags))
            return [b.get("dev", "") for b in root.findall("os/boot")]

        async def scenario() -> None:
            cfg = VmConfig(name=vm_name, memory_mib=64, domain_type="qemu", network="none",
                           iso=str(iso), disks=[DiskConfig(str(disk), size_bytes=1 << 20)])
            info = await backend.define(cfg)
            assert boot_order(libvirt.VIR_DOMAIN_XML_INACTIVE) == ["cdrom", "hd"]
            await backend.start(info.vm_id)
            assert boot_order(0) == ["cdrom", "hd"]  # this boot: the installer
            assert boot_order(libvirt.VIR_DOMAIN_XML_INACTIVE) == ["hd", "cdrom"]  # the next: disk
            await backend.force_off(info.vm_id)
            await backend.start(info.vm_id)
            assert boot_order(0) == ["hd", "cdrom"]
            await backend.force_off(info.vm_id)

        try:
            qt_loop.run_until_complete(asyncio.wait_for(scenario(), 60))
        finally:
            remove_domain(libvirtd.uri, vm_name)
            iso.unlink(missing_ok=True)
