"""BuiltinBackend: the VMs of "This computer", each run by its own `vmgui-vmm` process.

Definitions are files (definitions.py); a running VM is a detached VMM process (launcher.py)
that the backend controls over QMP (qmp_session.py). State comes from the VMM's events and from
its process ending: an end after a SHUTDOWN event, or with exit status 0, is "shut off"; any
other end (killed, internal error) is "crashed", with the last lines of the VMM's log as the
reason. On `connect()` the backend re-attaches to VMMs still running from an earlier session.

Everything here runs on the event loop's thread; file system and /proc work goes to the default
executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from vmgui.backends.base import (
    BUILTIN_URI,
    BackendError,
    BackendEvent,
    ConnectionChanged,
    EventStream,
    VmChanged,
    VmRemoved,
)
from vmgui.backends.builtin import checks, demo, demo_linux, launcher, paths
from vmgui.backends.builtin.definitions import Definition, DefinitionStore
from vmgui.backends.builtin.launcher import RuntimeFiles
from vmgui.backends.builtin.qmp_session import VmmSession
from vmgui.backends.builtin.serial import FileFollowStream, SocketStream
from vmgui.backends.builtin.stats import sample_from
from vmgui.model import ConnectionState, ConnectionStatus, VmConfig, VmInfo, VmState, VmStatsSample
from vmgui.model.console import ByteStream, ConsoleEndpoints, SharedFramebufferEndpoint
from vmgui.model.details import HardwareRow, NewVmDefaults
from vmgui.model.host import DomainCapabilities, HostResources
from vmgui.model.storage import StorageItem
from vmgui.model.vm_settings import ApplyResult, CdromDrive, VmSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A VMM must answer on its control socket this soon after it was started.
START_TIMEOUT_S = 60.0
#: After the control connection closed, how long the process may take to end.
EXIT_WAIT_S = 10.0
#: Force off: how long `quit` may take before the process is killed.
FORCE_OFF_WAIT_S = 5.0

#: QMP run states that mean "stopped until someone says cont". Not "prelaunch": our VMM answers
#: QMP while it still builds the machine and then runs it without a RESUME event, so a start
#: queried in that window would otherwise stay "paused" for good.
_PAUSED_STATUSES = ("paused", "suspended", "inmigrate", "postmigrate")


@dataclass
class _Running:
    """What the backend knows about one VM's live VMM."""

    files: RuntimeFiles
    pid: int
    session: VmmSession
    proc: subprocess.Popen[bytes] | None = None  # set when we started it (we must reap it)
    shutdown_seen: bool = False
    ended: asyncio.Event | None = None


class BuiltinBackend:
    """The built-in VMM connection, "builtin:///"."""

    def __init__(self, uri: str = BUILTIN_URI) -> None:
        self._uri = uri
        self._status = ConnectionStatus(uri, ConnectionState.DISCONNECTED, "Not connected yet.")
        self._stream = EventStream()
        self._store: DefinitionStore | None = None
        self._defs: dict[str, Definition] = {}
        self._state: dict[str, VmState] = {}
        self._reason: dict[str, str] = {}
        self._running: dict[str, _Running] = {}
        self._busy: set[str] = set()  # VMs with a start in progress
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- identity --------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def display_name(self) -> str:
        return "This computer (built-in)"

    @property
    def host_name(self) -> str:
        return os.uname().nodename

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def is_local(self) -> bool:
        return True

    def events(self) -> AsyncIterator[BackendEvent]:
        return self._stream.subscribe()

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(fn, *args)
        )

    # --- connecting and re-attaching ------------------------------------------------------------

    async def connect(self) -> None:
        if self._store is not None:
            return
        self._store = DefinitionStore(paths.definitions_dir())
        await self._blocking(paths.runtime_dir)  # BackendError when it cannot be private
        definitions = await self._blocking(self._store.load_all)
        self._defs = {d.vm_id: d for d in definitions}
        for d in definitions:
            self._state[d.vm_id] = VmState.SHUTOFF
        await asyncio.gather(*(self._reattach(d) for d in definitions))
        self._status = ConnectionStatus(self._uri, ConnectionState.CONNECTED)
        self._stream.publish(ConnectionChanged(self._status))

    async def _reattach(self, d: Definition) -> None:
        """Adopt a VMM still running from an earlier session, or read how it ended."""
        try:
            files = await self._blocking(RuntimeFiles.for_vm, d.vm_id)
        except BackendError as exc:
            log.warning("cannot look for the VMM of %s: %s", d.name, exc)
            return
        record = await self._blocking(launcher.read_pid, files)
        if record is None:
            return
        alive = await self._blocking(launcher.is_our_vmm, record.pid, files, record.start_ticks)
        if alive:
            try:
                await self._attach(d, files, record.pid, None, timeout=5.0)
                return
            except BackendError as exc:
                log.warning("cannot re-attach to %s (pid %d): %s", d.name, record.pid, exc)
        # Gone while we were away: killed if it left its socket, failed if its log says so.
        tail = await self._blocking(launcher.log_tail, files.log)
        killed = os.path.exists(files.qmp) and not alive
        if killed or launcher.error_line(tail):
            self._state[d.vm_id] = VmState.CRASHED
            self._reason[d.vm_id] = tail or "The built-in VMM ended unexpectedly."
        else:
            await self._blocking(launcher.clear_runtime, files)

    async def _attach(self, d: Definition, files: RuntimeFiles, pid: int,
                      proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
        vm_id = d.vm_id
        session = VmmSession(
            d.name,
            files.qmp,
            lambda name, data: self._on_qmp_event(vm_id, name, data),
            lambda: self._spawn(self._on_closed(vm_id)),
        )

        def alive() -> bool:
            return proc.poll() is None if proc is not None else os.path.exists(f"/proc/{pid}")

        await session.connect(timeout, alive)
        run = _Running(files, pid, session, proc, ended=asyncio.Event())
        self._running[vm_id] = run
        try:
            status = await session.execute("query-status")
        except BackendError:
            status = {}
        paused = isinstance(status, dict) and status.get("status") in _PAUSED_STATUSES
        self._set_state(vm_id, VmState.PAUSED if paused else VmState.RUNNING)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop watching; running VMs keep running (their VMMs do not depend on us)."""
        for run in list(self._running.values()):
            await run.session.close()
        self._running.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._stream.close()

    # --- state -----------------------------------------------------------------------------------

    def _info(self, d: Definition) -> VmInfo:
        return VmInfo(
            connection=self._uri,
            vm_id=d.vm_id,
            name=d.name,
            state=self._state.get(d.vm_id, VmState.SHUTOFF),
            memory_kib=d.memory_mib * 1024,
            vcpus=d.vcpus,
            persistent=True,
            reason=self._reason.get(d.vm_id, ""),
        )

    def _set_state(self, vm_id: str, state: VmState, reason: str = "") -> None:
        self._state[vm_id] = state
        self._reason[vm_id] = reason
        d = self._defs.get(vm_id)
        if d is not None:
            self._stream.publish(VmChanged(self._info(d)))

    def _on_qmp_event(self, vm_id: str, name: str, data: dict[str, Any]) -> None:
        run = self._running.get(vm_id)
        if run is None:
            return
        if name == "SHUTDOWN":
            run.shutdown_seen = True
            self._set_state(vm_id, VmState.SHUTDOWN)
        elif name == "STOP" and not run.shutdown_seen:
            self._set_state(vm_id, VmState.PAUSED)
        elif name in ("RESUME", "RESET") and not run.shutdown_seen:
            self._set_state(vm_id, VmState.RUNNING)

    async def _on_closed(self, vm_id: str) -> None:
        """The control connection ended: wait for the process and decide how the VM ended."""
        run = self._running.get(vm_id)
        if run is None:
            return
        status = await self._blocking(self._wait_exit, run)
        await run.session.close()
        self._running.pop(vm_id, None)
        clean = status == 0 or (status is None and run.shutdown_seen)
        if clean:
            await self._blocking(launcher.clear_runtime, run.files)
            self._set_state(vm_id, VmState.SHUTOFF)
        else:
            tail = await self._blocking(launcher.log_tail, run.files.log)
            why = f"killed by signal {-status}" if status is not None and status < 0 else ""
            reason = tail or f"The built-in VMM ended unexpectedly{f' ({why})' if why else ''}."
            log.warning("VMM of %s ended (%s): %s", vm_id, why or f"status {status}", tail)
            with contextlib.suppress(OSError):
                run.files.pid.unlink()
            self._set_state(vm_id, VmState.CRASHED, reason)
        assert run.ended is not None
        run.ended.set()

    @staticmethod
    def _wait_exit(run: _Running) -> int | None:
        """Exit status when the process was ours, else None once it is gone (blocking)."""
        if run.proc is not None:
            try:
                return run.proc.wait(EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                return None
        end = time.monotonic() + EXIT_WAIT_S
        while launcher.is_our_vmm(run.pid, run.files) and time.monotonic() < end:
            time.sleep(0.05)
        return None

    # --- queries ---------------------------------------------------------------------------------

    def _definition(self, vm_id: str) -> Definition:
        d = self._defs.get(vm_id)
        if d is None:
            raise BackendError("This VM no longer exists.")
        return d

    def find(self, name_or_id: str) -> VmInfo:
        """A VM by name (or UUID), for the command line."""
        for d in self._defs.values():
            if name_or_id in (d.name, d.vm_id):
                return self._info(d)
        raise BackendError(f"There is no built-in VM named “{name_or_id}”.")

    async def list_vms(self) -> list[VmInfo]:
        self._require_connected()
        return [self._info(d) for d in self._defs.values()]

    def _require_connected(self) -> None:
        if self._store is None:
            raise BackendError("The built-in connection is not open.")

    def definition(self, vm_id: str) -> VmConfig:
        """The VM's settings, for the Edit dialog."""
        return self._definition(vm_id).to_config()

    async def details_xml(self, vm_id: str) -> str:
        d = self._definition(vm_id)
        files = await self._blocking(RuntimeFiles.for_vm, vm_id)
        lines = [f"Name: {d.name}", f"UUID: {d.vm_id}", f"Memory: {d.memory_mib} MiB",
                 f"Virtual CPUs: {d.vcpus}"]
        if d.kernel:
            lines.append(f"Kernel: {d.kernel}")
            if d.initrd:
                lines.append(f"Initrd: {d.initrd}")
            if d.cmdline:
                lines.append(f"Command line: {d.cmdline}")
        else:
            lines.append(f"Firmware: {d.firmware or 'seabios'}")
        if d.iso:
            lines.append(f"ISO image: {d.iso}")
        lines += [f"Disk: {x.path}{' (read-only)' if x.readonly else ''}" for x in d.disks]
        lines += [f"Network: {d.network}", f"VMM log: {files.log}"]
        with contextlib.suppress(BackendError):
            lines.append(" ".join(launcher.vmm_argv(d, files)[2:]))
        return "\n".join(lines)

    async def hardware_rows(self, vm_id: str) -> list[HardwareRow]:
        d = self._definition(vm_id)
        rows = [HardwareRow("Machine", "kvm x86_64 (built-in VMM)"),
                HardwareRow("Processors", f"{d.vcpus} vCPU"),
                HardwareRow("Memory", f"{d.memory_mib:,} MiB")]
        if d.kernel:
            rows.append(HardwareRow("Direct kernel boot", d.kernel))
        else:
            rows.append(HardwareRow("Firmware", d.firmware or "seabios"))
        if d.iso:
            rows.append(HardwareRow("CD-ROM", d.iso))
        rows += [HardwareRow(f"Disk {i}", x.path + (" (read-only)" if x.readonly else ""))
                 for i, x in enumerate(d.disks)]
        rows.append(HardwareRow("Network", d.network))
        rows.append(HardwareRow("Display", f"framebuffer {d.framebuffer[0]}x{d.framebuffer[1]}"))
        return rows

    async def domain_type(self, vm_id: str) -> str:
        self._definition(vm_id)  # BackendError for an unknown VM, like the other backends
        return "kvm"  # the built-in VMM has no other way to run a guest

    async def domain_capabilities(self) -> DomainCapabilities:
        return DomainCapabilities(uri=self.uri, arch="x86_64", domain_types=("kvm",))

    # --- defining -------------------------------------------------------------------------------

    def new_vm_defaults(self) -> NewVmDefaults:
        return NewVmDefaults(disk_folder=str(paths.images_dir()), fixed_domain_type="kvm")

    def check_name(self, name: str) -> None:
        """The wizard's name rule for this backend (raises BackendError)."""
        checks.require(checks.name_problem(name, set()))

    async def kernel_problem(self, path: str) -> str:
        return await self._blocking(checks.kernel_problem, path)

    async def iso_problem(self, path: str) -> str:
        return await self._blocking(checks.iso_problem, path)

    async def disk_problem(self, path: str, exclude: str = "") -> str:
        others = [d for d in self._defs.values() if d.vm_id != exclude]
        return await self._blocking(checks.disk_problem, path, others)

    async def host_resources(self) -> HostResources:
        """This computer: total memory, and the CPUs one built-in VM may have."""
        return await self._blocking(checks.host_resources)

    def demo_problem(self) -> str:
        """Why the Demo source cannot be offered here ("" when it can)."""
        missing = demo.missing_tools()
        if missing and not demo.demo_iso_path().is_file():
            return demo.missing_tools_sentence(missing)
        return ""

    async def demo_iso(self) -> str:
        """The Demo's GRUB ISO (built on first use; cancelling the await stops the build)."""
        cancel = threading.Event()
        try:
            return str(await self._blocking(demo.build_demo_iso, cancel))
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def demo_linux(self, progress: Callable[[int, str], None]) -> tuple[str, str, str]:
        """Kernel, initrd and command line of the Linux demo (fetched from Debian on first use;
        `progress(percent, text)` is called on the event loop; cancelling stops the fetch)."""
        loop = asyncio.get_running_loop()
        cancel = threading.Event()

        def report(percent: int, text: str) -> None:
            loop.call_soon_threadsafe(progress, percent, text)

        try:
            d = await self._blocking(demo_linux.prepare_demo_linux, report, cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise
        return str(d.kernel), str(d.initrd), demo_linux.CMDLINE

    async def define(self, config: VmConfig) -> VmInfo:
        self._require_connected()
        d = Definition.from_config(config)
        await self._save(d, config)
        return self._info(d)

    async def get_settings(self, vm_id: str) -> VmSettings:
        d = self._definition(vm_id)
        return VmSettings(
            memory_mib=d.memory_mib,
            vcpus=d.vcpus,
            boot_order=() if d.kernel else (("cdrom", "hd") if d.iso else ("hd",)),
            cdroms=() if d.kernel else (CdromDrive("cdrom", d.iso),),
            domain_type="kvm",
            kernel=d.kernel,
            initrd=d.initrd,
            cmdline=d.cmdline,
            domain_types=("kvm",),
        )

    async def apply_settings(self, vm_id: str, settings: VmSettings) -> ApplyResult:
        """Saved in the definition; a running VM gets them at its next start."""
        old = self._definition(vm_id)
        if settings.autostart:
            raise BackendError("Built-in VMs cannot start with the host yet.")
        new = replace(
            old,
            memory_mib=settings.memory_mib,
            vcpus=settings.vcpus,
            kernel=settings.kernel if old.kernel else "",
            initrd=settings.initrd if old.kernel else "",
            cmdline=settings.cmdline if old.kernel else "",
            iso=settings.cdroms[0].media if settings.cdroms and not old.kernel else old.iso,
        )
        if new.kernel == "" and old.kernel:
            raise BackendError("A VM that boots a Linux kernel needs its kernel file.")
        await self._save(new, VmConfig(name=new.name))
        return ApplyResult(restart_needed=self._state.get(vm_id, VmState.SHUTOFF).is_active)

    async def _save(self, d: Definition, config: VmConfig,
                    replacing: Definition | None = None) -> None:
        assert self._store is not None
        others = [o for o in self._defs.values() if o.vm_id != d.vm_id]
        checks.require(await self._blocking(checks.definition_problem, d, others))
        made: list[str] = []
        try:
            for disk in config.disks:
                if disk.size_bytes > 0:
                    await self._blocking(launcher.create_disk, disk.path, disk.size_bytes)
                    made.append(disk.path)
            await self._blocking(self._store.save, d)
        except BaseException:
            for path in made:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
        self._defs[d.vm_id] = d
        self._state.setdefault(d.vm_id, VmState.SHUTOFF)
        self._stream.publish(VmChanged(self._info(d)))

    async def list_storage(self, vm_id: str) -> list[StorageItem]:
        """The VM's ISO and disk images; writable image files are deletable."""
        d = self._definition(vm_id)
        others = [o for o in self._defs.values() if o.vm_id != vm_id]
        items = []
        if d.iso:
            items.append(StorageItem(d.iso, "cdrom", is_cdrom=True, deletable=False,
                                     note="Installation media is never deleted."))
        for i, disk in enumerate(d.disks):
            users = tuple(o.name for o in others for x in o.disks if x.path == disk.path)
            regular = await self._blocking(os.path.isfile, disk.path)
            note = "" if regular else "Not a regular file."
            if disk.readonly and not note:
                note = "A read-only image."
            items.append(StorageItem(disk.path, f"vd{chr(ord('a') + i)}", deletable=regular,
                                     note=note, used_by=users))
        return items

    async def delete(self, vm_id: str, storage_paths: Sequence[str] = ()) -> None:
        d = self._definition(vm_id)
        if self._state.get(vm_id, VmState.SHUTOFF).is_active or vm_id in self._busy:
            raise BackendError(f"“{d.name}” is running: force it off before deleting it.")
        deletable = {s.path for s in await self.list_storage(vm_id) if s.deletable}
        assert self._store is not None
        await self._blocking(self._store.remove, vm_id)
        self._defs.pop(vm_id, None)
        self._state.pop(vm_id, None)
        self._reason.pop(vm_id, None)
        files = await self._blocking(RuntimeFiles.for_vm, vm_id)
        await self._blocking(launcher.clear_runtime, files)
        for p in (files.log, files.old_log, files.serial_file):
            with contextlib.suppress(OSError):
                p.unlink()
        self._stream.publish(VmRemoved(self._uri, vm_id))
        problems = []
        for path in storage_paths:
            if path not in deletable:
                problems.append(f"{path} (not one of its deletable disks)")
                continue
            try:
                await self._blocking(os.unlink, path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                problems.append(f"{path} ({exc.strerror or exc})")
        if problems:
            raise BackendError(f"“{d.name}” was deleted, but not its disk {problems[0]}.")

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, vm_id: str) -> None:
        d = self._definition(vm_id)
        if self._state.get(vm_id, VmState.SHUTOFF).is_active or vm_id in self._busy:
            raise BackendError(f"“{d.name}” is already running.")
        self._busy.add(vm_id)
        try:
            await self._start(d)
        finally:
            self._busy.discard(vm_id)

    async def _start(self, d: Definition) -> None:
        await self._blocking(launcher.check_files, d)
        problem = await self._blocking(checks.memory_problem, d.memory_mib)
        checks.require(problem)
        for disk in d.disks:
            users = [self._defs[v] for v in self._running if v in self._defs]
            shared = launcher.disk_users(disk.path, users) if not disk.readonly else []
            if shared:
                raise BackendError(
                    f"The disk image {disk.path} is in use by the running VM “{shared[0].name}”; "
                    f"“{d.name}” was not started."
                )
            if await self._blocking(launcher.disk_locked, disk.path, disk.readonly):
                raise BackendError(
                    f"The disk image {disk.path} is in use by another program; "
                    f"“{d.name}” was not started."
                )
        files = await self._blocking(RuntimeFiles.for_vm, d.vm_id)
        proc = await self._blocking(launcher.launch, d, files)
        self._set_state(d.vm_id, self._state.get(d.vm_id, VmState.SHUTOFF), "")
        try:
            await self._attach(d, files, proc.pid, proc, timeout=START_TIMEOUT_S)
        except BaseException as exc:
            status = await self._blocking(_end_process, proc)
            tail = await self._blocking(launcher.log_tail, files.log)
            await self._blocking(launcher.clear_runtime, files)
            if isinstance(exc, asyncio.CancelledError):
                raise
            last = launcher.error_line(tail)
            log.warning("VMM of %s did not start (status %s): %s", d.name, status, tail)
            raise BackendError(
                f"“{d.name}” could not start: {last}" if last else str(exc)
            ) from None

    def _live(self, vm_id: str) -> _Running:
        d = self._definition(vm_id)
        run = self._running.get(vm_id)
        if run is None:
            raise BackendError(f"“{d.name}” is not running.")
        return run

    async def shutdown(self, vm_id: str) -> None:
        await self._live(vm_id).session.execute("system_powerdown")

    async def reboot(self, vm_id: str) -> None:
        # The VMM presses the power button and starts the guest again once it has powered
        # off, instead of ending (libvirt's reboot of a guest without an agent).
        await self._live(vm_id).session.execute("x-vmgui-reboot")

    async def reset(self, vm_id: str) -> None:
        await self._live(vm_id).session.execute("system_reset")

    async def pause(self, vm_id: str) -> None:
        await self._live(vm_id).session.execute("stop")

    async def resume(self, vm_id: str) -> None:
        await self._live(vm_id).session.execute("cont")

    async def force_off(self, vm_id: str) -> None:
        run = self._live(vm_id)
        run.shutdown_seen = True  # forced off is an ordered end, not a crash
        with contextlib.suppress(BackendError):
            await run.session.execute("quit")
        assert run.ended is not None
        try:
            await asyncio.wait_for(run.ended.wait(), FORCE_OFF_WAIT_S)
            return
        except TimeoutError:
            pass
        if await self._blocking(launcher.is_our_vmm, run.pid, run.files):
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, signal.SIGKILL)
        await asyncio.wait_for(run.ended.wait(), EXIT_WAIT_S + FORCE_OFF_WAIT_S)

    # --- stats and consoles --------------------------------------------------------------------

    async def sample_stats(self) -> list[VmStatsSample]:
        runs = list(self._running.items())
        replies = await asyncio.gather(
            *(run.session.execute("x-vmgui-stats") for _, run in runs), return_exceptions=True
        )
        samples = []
        for (vm_id, run), reply in zip(runs, replies, strict=True):
            d = self._defs.get(vm_id)
            if d is None or not isinstance(reply, dict):
                continue
            samples.append(await self._blocking(
                sample_from, vm_id, run.pid, d.vcpus, d.memory_mib, reply
            ))
        return samples

    async def open_console(self, vm_id: str) -> ConsoleEndpoints:
        run = self._live(vm_id)
        d = self._definition(vm_id)
        if d.framebuffer[0] <= 0:
            return ConsoleEndpoints(vm_id, None, True, f"“{d.name}” has no graphical console.")
        return ConsoleEndpoints(vm_id, SharedFramebufferEndpoint(run.files.qmp), has_serial=True)

    async def open_serial(self, vm_id: str) -> ByteStream:
        run = self._live(vm_id)
        if launcher.serial_supports_unix():
            return await SocketStream.open(run.files.serial)
        assert run.ended is not None
        return FileFollowStream.open(str(run.files.serial_file), run.ended)

    def log_path(self, vm_id: str) -> Path:
        return RuntimeFiles.for_vm(self._definition(vm_id).vm_id).log


def _end_process(proc: subprocess.Popen[bytes]) -> int | None:
    """A VMM that did not come up: make sure it is gone and reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    try:
        return proc.wait(EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        return None


__all__ = ["BuiltinBackend"]
