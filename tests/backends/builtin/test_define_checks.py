"""What define() and start() refuse, each with one sentence, nothing changed or started."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.backends.builtin.helpers import connected, guest_config, wait_state
from tests.fixtures.builtin import BuiltinEnv
from tests.support import need_kvm
from vmgui.backends.base import BackendError
from vmgui.backends.builtin import checks
from vmgui.backends.builtin.definitions import Definition, DefinitionStore
from vmgui.backends.builtin.paths import definitions_dir
from vmgui.model import DiskConfig, VmConfig, VmState
from vmgui.vmm.virtio.image import lock_image

Build = Callable[..., Path]


def refused(config: VmConfig, match: str) -> None:
    async def scenario() -> None:
        backend = await connected()
        try:
            with pytest.raises(BackendError, match=match):
                await backend.define(config)
            assert await backend.list_vms() == []
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_not_a_kernel(builtin_env: BuiltinEnv, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"hello" * 1000)
    refused(VmConfig(name="x", kernel=str(junk), network="none"), "not a bzImage or PVH ELF")


def test_missing_kernel_and_bad_iso(builtin_env: BuiltinEnv, tmp_path: Path) -> None:
    refused(VmConfig(name="x", kernel=str(tmp_path / "nope"), network="none"), "does not exist")
    fake = tmp_path / "fake.iso"
    fake.write_bytes(bytes(40000))
    refused(VmConfig(name="x", iso=str(fake), network="none"), "not an ISO 9660 image")


def test_bad_name_memory_cpus(builtin_env: BuiltinEnv, build_guest: Build) -> None:
    kernel = build_guest("power_button")
    refused(guest_config("a/b", kernel), "not allowed")
    refused(VmConfig(name="m", memory_mib=10**7, kernel=str(kernel), network="none"),
            "Memory must be between")
    refused(VmConfig(name="c", vcpus=999, kernel=str(kernel), network="none"),
            "Virtual CPUs must be between")


def test_memory_beyond_free_memory_is_one_sentence() -> None:
    assert "more memory than this computer has free (100 MiB)" in checks.memory_problem(
        200, free_mib=100
    )
    assert checks.memory_problem(64, free_mib=100) == ""


def test_duplicate_name_and_shared_disk_at_define(
    builtin_env: BuiltinEnv, build_guest: Build, tmp_path: Path
) -> None:
    kernel = build_guest("power_button")
    disk = tmp_path / "d.img"

    async def scenario() -> None:
        backend = await connected()
        try:
            a = await backend.define(
                guest_config("a", kernel, disks=[DiskConfig(str(disk), size_bytes=1 << 30)])
            )
            assert disk.stat().st_size == 1 << 30 and disk.stat().st_blocks == 0  # sparse
            with pytest.raises(BackendError, match="already exists"):
                await backend.define(guest_config("a", kernel))
            with pytest.raises(BackendError, match="already the disk of the VM “a”"):
                await backend.define(guest_config("b", kernel, disks=[DiskConfig(str(disk))]))
            assert [v.name for v in await backend.list_vms()] == ["a"]
            (item,) = await backend.list_storage(a.vm_id)
            assert item.deletable and item.path == str(disk)
            await backend.delete(a.vm_id, [str(disk)])
            assert not disk.exists() and await backend.list_vms() == []
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_two_vms_on_one_disk_second_is_not_started(
    builtin_env: BuiltinEnv, build_guest: Build, tmp_path: Path
) -> None:
    """Definitions that share a disk (copied by hand): the second start is refused."""
    need_kvm()
    kernel = build_guest("power_button")
    disk = tmp_path / "shared.img"
    disk.write_bytes(bytes(1 << 20))
    store = DefinitionStore(definitions_dir())
    first = Definition.from_config(guest_config("first", kernel, disks=[DiskConfig(str(disk))]))
    second = Definition.from_config(guest_config("second", kernel, disks=[DiskConfig(str(disk))]))
    store.save(first)
    store.save(second)

    async def scenario() -> None:
        backend = await connected()
        try:
            await backend.start(first.vm_id)
            await wait_state(backend, first.vm_id, VmState.RUNNING)
            with pytest.raises(BackendError, match="in use by the running VM “first”"):
                await backend.start(second.vm_id)
            assert (await wait_state(backend, second.vm_id, VmState.SHUTOFF, 1)).reason == ""
            assert len(builtin_env.vmm_pids()) == 1
            await backend.force_off(first.vm_id)
            await wait_state(backend, first.vm_id, VmState.SHUTOFF)
            # Another program (here: this test, with the VMM's own lock) holds the image.
            fd = os.open(disk, os.O_RDWR)
            try:
                lock_image(fd, str(disk), read_only=False)
                with pytest.raises(BackendError, match="in use by another program"):
                    await backend.start(second.vm_id)
            finally:
                os.close(fd)
            await backend.start(first.vm_id)
            await wait_state(backend, first.vm_id, VmState.RUNNING)
            # A new backend (another app instance) knows only the lock on the image.
            other = await connected()
            await other.force_off(first.vm_id)
            await other.close()
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_running_vm_cannot_be_deleted_and_settings_apply_at_next_start(
    builtin_env: BuiltinEnv, build_guest: Build
) -> None:
    need_kvm()
    kernel = build_guest("power_button")

    async def scenario() -> None:
        backend = await connected()
        try:
            info = await backend.define(guest_config("busy", kernel))
            await backend.start(info.vm_id)
            await wait_state(backend, info.vm_id, VmState.RUNNING)
            with pytest.raises(BackendError, match="force it off before deleting"):
                await backend.delete(info.vm_id)
            with pytest.raises(BackendError, match="already running"):
                await backend.start(info.vm_id)
            running = await backend.get_settings(info.vm_id)
            assert (await backend.apply_settings(info.vm_id, running)).restart_needed
            await backend.force_off(info.vm_id)
            await wait_state(backend, info.vm_id, VmState.SHUTOFF)
            settings = await backend.get_settings(info.vm_id)
            assert settings.kernel == str(kernel) and settings.domain_types == ("kvm",)
            done = await backend.apply_settings(info.vm_id, replace(settings, memory_mib=48))
            assert not done.restart_needed
            (edited,) = await backend.list_vms()
            assert edited.memory_kib == 48 * 1024
            with pytest.raises(BackendError, match="not a bzImage or PVH ELF"):
                await backend.apply_settings(info.vm_id, replace(settings, kernel=__file__))
            assert (await backend.get_settings(info.vm_id)).memory_mib == 48  # nothing changed
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_a_vmm_that_fails_to_start_is_one_sentence(
    builtin_env: BuiltinEnv, build_guest: Build, tmp_path: Path
) -> None:
    """The kernel was fine when defined and broken by the time of Start: the VMM's own line."""
    need_kvm()
    kernel = tmp_path / "guest.elf"
    kernel.write_bytes(build_guest("power_button").read_bytes())

    async def scenario() -> None:
        backend = await connected()
        try:
            info = await backend.define(guest_config("broken", kernel))
            kernel.write_bytes(b"no longer a kernel" * 100)
            with pytest.raises(BackendError) as caught:
                await backend.start(info.vm_id)
            assert str(caught.value).startswith("“broken” could not start: ")
            assert "bzImage or PVH ELF" in str(caught.value)
            assert "\n" not in str(caught.value)
            assert (await wait_state(backend, info.vm_id, VmState.SHUTOFF, 1)).reason == ""
            assert builtin_env.vmm_pids() == []
        finally:
            await backend.close()

    asyncio.run(scenario())
