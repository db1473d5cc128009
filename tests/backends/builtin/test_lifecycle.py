"""The built-in backend with real `vmgui-vmm` processes on /dev/kvm: start, events, re-attach
after the app closed, crash detection with the log tail, graceful shutdown and force off."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backends.builtin.helpers import (
    connected,
    guest_config,
    pid_alive,
    wait_file_text,
    wait_state,
)
from tests.fixtures.builtin import BuiltinEnv
from tests.support import need_kvm
from vmgui.backends.base import BackendError, VmChanged
from vmgui.backends.builtin import launcher
from vmgui.backends.builtin.launcher import RuntimeFiles
from vmgui.model import VmState
from vmgui.model.console import SharedFramebufferEndpoint

Build = Callable[..., Path]


@pytest.mark.slow
def test_vm_lives_on_without_the_app_reattaches_and_shuts_down(
    builtin_env: BuiltinEnv, build_guest: Build
) -> None:
    need_kvm()
    kernel = build_guest("power_button")

    async def scenario() -> None:
        backend = await connected()
        seen: list[object] = []

        async def collect() -> None:
            async for ev in backend.events():
                seen.append(ev)

        collector = asyncio.ensure_future(collect())
        await asyncio.sleep(0)
        info = await backend.define(guest_config("pb", kernel))
        await backend.start(info.vm_id)
        assert (await wait_state(backend, info.vm_id, VmState.RUNNING)).state is VmState.RUNNING
        files = RuntimeFiles.for_vm(info.vm_id)
        assert os.stat(files.qmp).st_mode & 0o777 == 0o600
        await wait_file_text(files.serial_file, "waiting for power button")
        await asyncio.sleep(0.1)  # let the collector drain its queue
        states = [ev.vm.state for ev in seen if isinstance(ev, VmChanged)]
        assert states[0] is VmState.SHUTOFF and VmState.RUNNING in states  # defined, started

        # Stats: exits by reason from x-vmgui-stats, VMM RSS, CPU time of the process.
        await asyncio.sleep(0.3)
        (sample,) = await backend.sample_stats()
        assert sample.vm_id == info.vm_id
        assert sum(sample.exits.values()) > 0
        assert sample.memory_used_kib > 0 and sample.memory_total_kib == 32 * 1024
        console = await backend.open_console(info.vm_id)
        assert console.graphics == SharedFramebufferEndpoint(files.qmp)
        serial = await backend.open_serial(info.vm_id)
        text = b""
        while b"waiting for power button" not in text:  # a late viewer sees earlier output
            text += await asyncio.wait_for(serial.read(), 10)
        await serial.close()

        # The app closes: the VMM keeps running.
        pid = int(files.pid.read_text().split()[0])
        await backend.close()
        await collector
        await asyncio.sleep(0.3)
        assert pid_alive(pid)

        # The app starts again: it finds the VM running and controls it.
        again = await connected()
        assert (await wait_state(again, info.vm_id, VmState.RUNNING, 5)).state is VmState.RUNNING
        assert (await again.open_console(info.vm_id)).graphics is not None
        await again.pause(info.vm_id)
        await wait_state(again, info.vm_id, VmState.PAUSED, 10)
        await again.resume(info.vm_id)
        await wait_state(again, info.vm_id, VmState.RUNNING, 10)
        await again.shutdown(info.vm_id)  # ACPI power button: the guest powers off
        done = await wait_state(again, info.vm_id, VmState.SHUTOFF)
        assert done.reason == ""
        assert "power button" in files.serial_file.read_text()
        assert not pid_alive(pid) and not files.pid.exists()
        await again.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_reboot_asks_the_guest_and_reset_does_not(
    builtin_env: BuiltinEnv, build_guest: Build
) -> None:
    """Reboot as libvirt's: the guest hears the power button, powers off, and starts again in
    the same VMM. Force Reset: starts again at once, the guest is not asked."""
    need_kvm()
    kernel = build_guest("power_button")
    banner, asked = "waiting for power button", "power button\n"

    async def scenario() -> None:
        backend = await connected()
        info = await backend.define(guest_config("rebooty", kernel))
        await backend.start(info.vm_id)
        serial = RuntimeFiles.for_vm(info.vm_id).serial_file
        await wait_file_text(serial, banner)
        pid = int(RuntimeFiles.for_vm(info.vm_id).pid.read_text().split()[0])

        await backend.reboot(info.vm_id)
        await wait_file_text(serial, banner, count=2)
        text = serial.read_text()
        assert text.count(asked) - text.count(banner + "\n") == 1  # the guest was asked once
        assert (await wait_state(backend, info.vm_id, VmState.RUNNING)).reason == ""

        await backend.reset(info.vm_id)
        await wait_file_text(serial, banner, count=3)
        text = serial.read_text()
        assert text.count(asked) - text.count(banner + "\n") == 1  # ... and not again
        assert (await wait_state(backend, info.vm_id, VmState.RUNNING)).reason == ""
        assert pid_alive(pid)  # both in the same VMM process

        await backend.force_off(info.vm_id)
        await wait_state(backend, info.vm_id, VmState.SHUTOFF, 15)
        await backend.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_killed_vmm_shows_crashed_with_log_tail_and_starts_again(
    builtin_env: BuiltinEnv, build_guest: Build
) -> None:
    need_kvm()
    kernel = build_guest("power_button")

    async def scenario() -> None:
        backend = await connected()
        info = await backend.define(guest_config("crashy", kernel))
        await backend.start(info.vm_id)
        await wait_state(backend, info.vm_id, VmState.RUNNING)
        files = RuntimeFiles.for_vm(info.vm_id)
        with files.log.open("a") as f:
            f.write("last words of the VMM\n")
        pid = int(files.pid.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        crashed = await wait_state(backend, info.vm_id, VmState.CRASHED)
        assert "last words of the VMM" in crashed.reason
        assert "signal" in crashed.reason or "last words" in crashed.reason

        await backend.start(info.vm_id)
        await wait_state(backend, info.vm_id, VmState.RUNNING)
        assert (await wait_state(backend, info.vm_id, VmState.RUNNING)).reason == ""
        await backend.force_off(info.vm_id)
        await wait_state(backend, info.vm_id, VmState.SHUTOFF, 15)
        await backend.close()

    asyncio.run(scenario())


def test_how_a_vmm_ended_while_the_app_was_closed_is_still_known(
    builtin_env: BuiltinEnv, build_guest: Build
) -> None:
    """Pid file left, process gone: killed (its socket is left), failed (its own error line,
    then --log's record of it), or ended in order (neither): crashed, crashed, shut off."""
    kernel = build_guest("power_button")
    logs = {
        "killed": "---- vmgui: starting killed\nsome progress\n",
        "failed": "---- vmgui: starting failed\nvmgui-vmm: vCPU 0: emulation failure\n"
                  "2026-12-05 14:00:00,000 ERROR MainThread vmgui.vmm.cli: vCPU 0: emulation "
                  "failure\n",
        "ended": "---- vmgui: starting ended\nall fine\n",
    }

    async def scenario() -> None:
        backend = await connected()
        ids = {name: (await backend.define(guest_config(name, kernel))).vm_id for name in logs}
        await backend.close()
        for name, vm_id in ids.items():
            files = RuntimeFiles.for_vm(vm_id)
            files.log.parent.mkdir(parents=True, exist_ok=True)
            files.log.write_text(logs[name])
            files.pid.write_text("999999999 1\n")
            if name == "killed":
                Path(files.qmp).write_text("")
        again = await connected()
        found = {v.name: v for v in await again.list_vms()}
        assert found["killed"].state is VmState.CRASHED and "some progress" in found["killed"].reason
        assert found["failed"].state is VmState.CRASHED
        assert "emulation failure" in found["failed"].reason
        assert found["ended"].state is VmState.SHUTOFF
        assert not RuntimeFiles.for_vm(ids["ended"]).pid.exists()
        await again.close()

    asyncio.run(scenario())


def test_pid_file_of_another_program_is_not_adopted(
    builtin_env: BuiltinEnv, build_guest: Build
) -> None:
    kernel = build_guest("power_button")

    async def scenario() -> None:
        backend = await connected()
        info = await backend.define(guest_config("mine", kernel))
        await backend.close()
        files = RuntimeFiles.for_vm(info.vm_id)
        files.pid.write_text(f"{os.getpid()}\n")  # alive, but pytest, not our VMM
        again = await connected()
        assert (await again.list_vms())[0].state is VmState.SHUTOFF
        with pytest.raises(BackendError, match="not running"):
            await again.force_off(info.vm_id)
        await again.close()

    asyncio.run(scenario())


def test_a_long_log_is_rotated_at_start(builtin_env: BuiltinEnv, build_guest: Build) -> None:
    need_kvm()
    kernel = build_guest("power_button")

    async def scenario() -> None:
        backend = await connected()
        info = await backend.define(guest_config("chatty", kernel))
        files = RuntimeFiles.for_vm(info.vm_id)
        files.log.parent.mkdir(parents=True, exist_ok=True)
        files.log.write_bytes(b"old line\n" * (launcher.MAX_LOG_BYTES // 9 + 1))
        await backend.start(info.vm_id)
        await wait_state(backend, info.vm_id, VmState.RUNNING)
        assert files.log.stat().st_size < launcher.MAX_LOG_BYTES
        old = files.old_log
        assert old.read_bytes().startswith(b"old line")
        await backend.force_off(info.vm_id)
        await backend.delete(info.vm_id)
        assert not old.exists() and not files.log.exists()
        await backend.close()

    asyncio.run(scenario())
