"""The VMM's assembly and lifecycle: builds Boards, runs the main loop, handles power events.

Seams (Firecracker separates its Vmm from the runtime API controller the same way): this module
assembles the machine (Board, serial console, QMP server) and owns every Board's lifecycle on
the main thread; runtime.VmRuntime holds the run state and serves the control interface
(control.VmControl) the QMP commands use; serial_console.SerialConsole does all serial host I/O.

Threads: the main thread runs `run()` (power events, reset/restart, signals, RTC timers); one
thread per vCPU (vcpu.py); the serial thread (serial_console.py); the QMP server on its own
thread (qmp.py). vCPU, serial and QMP threads never tear anything down themselves: they post a
request and wake the main thread. Pause/resume are the exception: VmRuntime does them on the
caller's thread without waiting for anything.

Power semantics (QEMU's): guest poweroff -> SHUTDOWN{guest:true, reason:"guest-shutdown"},
exit 0; after QMP x-vmgui-reboot, a guest poweroff is RESET{guest:true, reason:"guest-shutdown"}
and a new Board instead. Guest reset (i8042 0xFE, ACPI reset register, triple fault) -> with
--on-reboot stop: SHUTDOWN{guest:true, reason:"guest-reset"}, exit 0; with restart: RESET{guest:true}, new Board.
QMP system_reset always restarts. An emulation failure stops the VM: STOP, then exit 1 with the
reason (exit reason, suberror, guest RIP) as the one line.

Ending: SIGTERM, SIGINT, SIGHUP and QMP quit end the VMM in well under a second whatever the guest
or a backend does: every wait on the way out is bounded (QmpServer.stop_thread ~0.25 s,
Board.close 0.3 s, SerialConsole.close ~0.25 s, and the vCPUs are told to quit before the
first of them), and what a stuck thread still uses is never released under it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import signal
import sys
import threading
import time

from vmgui.vmm import kvm
from vmgui.vmm.board import Board, BoardHooks, BootImage, read_boot_image
from vmgui.vmm.config import MachineConfig
from vmgui.vmm.devices.framebuffer import Framebuffer
from vmgui.vmm.errors import EXIT_ERROR, EXIT_OK, VmmError
from vmgui.vmm.record import TYPE_CHECKING
from vmgui.vmm.runtime import VmRuntime
from vmgui.vmm.serial_console import SerialConsole
from vmgui.vmm.vcpu import VcpuEvent, install_kick_handler
from vmgui.vmm.vm_setup import EarlyStart, kvm_device_path

if TYPE_CHECKING:  # qmp (asyncio, json) is imported only when --qmp asks for it: faster boot
    from typing import Any

    from vmgui.vmm.qmp import QmpServer

#: Longest main-loop sleep: bounds how late a guest that just enabled RTC interrupts sees one.
TIMER_POLL = 0.25


class Machine:
    """`run()` returns the process exit status or raises VmmError; `runtime` is its control."""

    def __init__(self, cfg: MachineConfig, early: EarlyStart | None = None) -> None:
        """`early`: /dev/kvm and the first power-on's VmShell being made on a thread (cli.py);
        this Machine takes them over (the caller still closes `early` if this raises)."""
        cfg.validate()
        self.cfg = cfg
        self.image: BootImage = read_boot_image(cfg)
        try:
            self.kvm = early.take_kvm() if early is not None else kvm.Kvm(kvm_device_path())
        except kvm.KvmError as e:
            raise VmmError(str(e)) from None
        self._early = early
        self._check_cpus()
        self.fb: Framebuffer | None = None
        if cfg.framebuffer is not None:
            try:
                self.fb = Framebuffer(*cfg.framebuffer)
            except ValueError as e:
                raise VmmError(str(e)) from None
        self.runtime = VmRuntime(cfg.memory, self.fb, self._post)
        self.serial: SerialConsole | None = None
        self.qmp: QmpServer | None = None
        self._requests: collections.deque[tuple[str, str]] = collections.deque()
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._exit: tuple[int, str] | None = None

    def _check_cpus(self) -> None:
        limit = self.kvm.check_extension(kvm.KVM_CAP_MAX_VCPUS) or self.kvm.check_extension(
            kvm.KVM_CAP_NR_VCPUS
        )
        if limit and self.cfg.cpus > limit:
            raise VmmError(f"--cpus {self.cfg.cpus}: this host's KVM allows at most {limit}")

    @property
    def board(self) -> Board | None:
        return self.runtime.board

    # ------------------------------------------------------------------ lifecycle (main thread)

    def run(self) -> int:
        """Boot, serve until the guest or a client ends the VM; return the exit status."""
        install_kick_handler()
        old_handlers = self._install_signal_handlers()
        try:
            self.serial = SerialConsole(self.cfg.serial, lambda: self._post("quit"))
            self.runtime.extra_stats = lambda: {"serial_dropped": self._serial_dropped()}
            self.serial.start()
            board = self._new_board()
            if self.cfg.qmp:
                from vmgui.vmm.qmp import QmpServer  # see TYPE_CHECKING above

                self.qmp = QmpServer(self.runtime, self.cfg.qmp)
                try:
                    self.qmp.start_thread()
                except OSError as e:
                    board.close()
                    raise VmmError(f"--qmp {self.cfg.qmp}: {e.strerror or e}") from None
            self._install(board)
            status, message = self._main_loop()
        finally:
            self._shutdown()
            self._restore_signal_handlers(old_handlers)
        if status != EXIT_OK:
            raise VmmError(message, status)
        return status

    def _serial_dropped(self) -> int:
        return self.serial.dropped if self.serial is not None else 0

    def _new_board(self) -> Board:
        serial = self.serial
        hooks = BoardHooks(
            serial_out=serial.out if serial is not None else _discard,
            serial_rx_empty=serial.rx_ready if serial is not None else _nothing,
            poweroff=lambda reason: self._post("poweroff", reason),
            reset=lambda reason: self._post("reset", reason),
            vcpu_event=self._on_vcpu_event,
            firmware_message=self._firmware_message,
        )
        try:
            shell = None
            if self._early is not None:  # the first power-on: use what the thread made
                early, self._early = self._early, None
                shell = early.take_shell()
            return Board(self.cfg, self.kvm, self.image, self.fb, hooks, shell)
        except kvm.KvmError as e:
            raise VmmError(f"cannot create the VM: {e}") from None

    def _install(self, board: Board) -> None:
        self.runtime.install(board)
        if self.serial is not None:
            self.serial.attach(board.serial.enqueue_input)

    def _close_board(self) -> bool:
        """Swap the current Board out and close it; False when a stuck thread delays that."""
        if self.serial is not None:
            self.serial.attach(None)
        board = self.runtime.take_board()
        return board.close() if board is not None else True

    def _shutdown(self) -> None:
        if self._exit is None:  # run() failed or was interrupted before the loop ended
            self.runtime.end("shutdown")
        if self.qmp is not None:
            self.qmp.stop_thread()
            self.qmp = None
        released = self._close_board()
        if self.serial is not None:
            self.serial.close()
        if not released:
            return  # a stuck thread still uses the framebuffer and the VM: the process exit frees them
        if self.fb is not None:
            self.fb.close()
        self.kvm.close()
        with contextlib.suppress(OSError):
            os.close(self._wake_fd)

    def _install_signal_handlers(self) -> dict[int, Any]:
        old: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return old
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[sig] = signal.signal(sig, lambda signum, _f: self._post("signal", str(signum)))
        return old

    def _restore_signal_handlers(self, old: dict[int, Any]) -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    # ------------------------------------------------------------------ requests and the loop

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)

    def _post(self, kind: str, detail: str = "") -> None:
        """Ask the main thread to act (any thread, signal handlers included)."""
        self._requests.append((kind, detail))
        self._wake()

    def _firmware_message(self, text: str) -> None:
        """One line on stderr, as for every other problem the user should see (vCPU thread)."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.write(f"vmgui-vmm: firmware: {text}\n")
            sys.stderr.flush()

    def _on_vcpu_event(self, event: VcpuEvent) -> None:
        kind = {"shutdown": "poweroff", "reset": "reset"}.get(event.kind, "error")
        self._post(kind, event.message)

    def _main_loop(self) -> tuple[int, str]:
        poller = select.poll()
        poller.register(self._wake_fd, select.POLLIN)
        while self._exit is None:
            if poller.poll(self._tick_timers() * 1000):
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
            while self._requests and self._exit is None:
                self._handle(*self._requests.popleft())
        return self._exit

    def _tick_timers(self) -> float:
        """Let the RTC raise due interrupts; return how long the loop may sleep."""
        board = self.runtime.board
        if board is None or self.runtime.status() != "running":
            return TIMER_POLL
        due = board.rtc.tick()
        if due is None:
            return TIMER_POLL
        return min(max(due - time.time(), 0.0), TIMER_POLL)

    def _handle(self, kind: str, detail: str) -> None:
        if kind == "poweroff" and self.runtime.restart_on_poweroff:
            self._emit("RESET", {"guest": True, "reason": "guest-shutdown"})
            self._restart()
        elif kind == "poweroff":
            self._finish("shutdown", EXIT_OK, "guest powered off")
            self._emit("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})
        elif kind == "reset":
            if self.cfg.on_reboot == "stop":
                self._finish("shutdown", EXIT_OK, "guest reset")
                self._emit("SHUTDOWN", {"guest": True, "reason": "guest-reset"})
            else:
                self._emit("RESET", {"guest": True, "reason": "guest-reset"})
                self._restart()
        elif kind == "host-reset":
            self._restart()
        elif kind == "error":
            self._finish("internal-error", EXIT_ERROR, detail)
            self._emit("STOP")
        elif kind in ("quit", "signal"):
            self._finish("shutdown", EXIT_OK, "quit")

    def _finish(self, state: str, status: int, message: str) -> None:
        self.runtime.end(state)  # vCPUs are told to quit now; _shutdown waits (bounded)
        self._exit = (status, message)

    def _restart(self) -> None:
        self.runtime.restart_on_poweroff = False  # a reboot asked for is served by any restart
        self._close_board()
        # Pending resets are served by this one. popleft, not iteration: the QMP thread
        # and signal handlers may append meanwhile.
        keep = []
        for _ in range(len(self._requests)):
            r = self._requests.popleft()
            if r[0] not in ("reset", "host-reset"):
                keep.append(r)
        self._requests.extendleft(reversed(keep))
        board = self._new_board()
        if self.fb is not None:
            self.fb.damage.add_all()
        self._install(board)

    def _emit(self, event: str, data: dict[str, Any] | None = None) -> None:
        if self.qmp is not None:
            self.qmp.emit(event, data)


def _discard(data: bytes) -> None:
    """Serial output with no console at all (a Board built without run())."""


def _nothing() -> None:
    pass
