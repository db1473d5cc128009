"""The running VMM: builds Boards, runs the main loop, handles power events, serves QMP.

Threads: the main thread runs `run()` (stdin -> serial, power events, reset/restart, signals);
one thread per vCPU (vcpu.py); the QMP server on its own thread (qmp.py). vCPU and QMP threads
never tear anything down themselves: they post a request and wake the main thread, which owns
the Board's lifecycle. Pause/resume are the exception (QMP `stop` must return once stopped):
they run on the caller's thread under `_lock`, as does everything that swaps the Board.

Power semantics (QEMU's): guest poweroff -> SHUTDOWN{guest:true, reason:"guest-shutdown"},
exit 0. Guest reset (i8042 0xFE, ACPI reset register, triple fault) -> with --on-reboot stop:
SHUTDOWN{guest:true, reason:"guest-reset"}, exit 0; with restart: RESET{guest:true}, new Board.
QMP system_reset always restarts. An emulation failure stops the VM: STOP, then exit 1 with the
reason (exit reason, suberror, guest RIP) as the one line.
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
from collections.abc import Hashable

from vmgui.vmm import kvm
from vmgui.vmm.board import Board, BoardHooks, BootImage, process_rss, read_boot_image
from vmgui.vmm.config import MachineConfig
from vmgui.vmm.devices.framebuffer import Framebuffer, Rect
from vmgui.vmm.errors import EXIT_ERROR, EXIT_OK, VmmError
from vmgui.vmm.record import TYPE_CHECKING
from vmgui.vmm.vcpu import VcpuEvent, install_kick_handler
from vmgui.vmm.vm_setup import EarlyStart, kvm_device_path

if TYPE_CHECKING:  # qmp (asyncio, json) is imported only when --qmp asks for it: faster boot
    from typing import Any

    from vmgui.vmm.qmp import CpuInfo, QmpServer

#: Ctrl-A then x ends the VMM from a terminal (QEMU's -serial stdio escape).
ESCAPE = 0x01
ESCAPE_QUIT = ord("x")
STDIN_CHUNK = 4096
PAUSE_TIMEOUT = 5.0
#: Longest main-loop sleep: bounds how late a guest that just enabled RTC interrupts sees one.
TIMER_POLL = 0.25


class Machine:
    """Implements qmp.VmControl; `run()` returns the process exit status or raises VmmError."""

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
        self.board: Board | None = None
        self.qmp: QmpServer | None = None
        self._lock = threading.RLock()
        self._state = "prelaunch"
        self._requests: collections.deque[tuple[str, str]] = collections.deque()
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._started = time.monotonic()
        self._serial_fd = -1
        self._own_serial_fd = False
        self._rx_pending = bytearray()
        self._stdin_fd = -1
        self._saved_tty: list[Any] | None = None
        self._escape = False
        self._exit: tuple[int, str] | None = None
        self._dropped_keys = 0

    def _check_cpus(self) -> None:
        limit = self.kvm.check_extension(kvm.KVM_CAP_MAX_VCPUS) or self.kvm.check_extension(
            kvm.KVM_CAP_NR_VCPUS
        )
        if limit and self.cfg.cpus > limit:
            raise VmmError(f"--cpus {self.cfg.cpus}: this host's KVM allows at most {limit}")

    # ------------------------------------------------------------------ lifecycle (main thread)

    def run(self) -> int:
        """Boot, serve until the guest or a client ends the VM; return the exit status."""
        install_kick_handler()
        old_handlers = self._install_signal_handlers()
        try:
            self._open_serial()
            self.board = self._new_board()
            if self.cfg.qmp:
                from vmgui.vmm.qmp import QmpServer  # noqa: PLC0415 - see TYPE_CHECKING above

                self.qmp = QmpServer(self, self.cfg.qmp)
                try:
                    self.qmp.start_thread()
                except OSError as e:
                    raise VmmError(f"--qmp {self.cfg.qmp}: {e.strerror or e}") from None
            with self._lock:
                self._state = "running"
                self.board.start()
            status, message = self._main_loop()
        finally:
            self._shutdown()
            self._restore_signal_handlers(old_handlers)
        if status != EXIT_OK:
            raise VmmError(message, status)
        return status

    def _new_board(self) -> Board:
        hooks = BoardHooks(
            serial_out=self._serial_out,
            serial_rx_empty=self._wake,
            poweroff=lambda reason: self._post("poweroff", reason),
            reset=lambda reason: self._post("reset", reason),
            vcpu_event=self._on_vcpu_event,
        )
        try:
            shell = None
            if self._early is not None:  # the first power-on: use what the thread made
                early, self._early = self._early, None
                shell = early.take_shell()
            return Board(self.cfg, self.kvm, self.image, self.fb, hooks, shell)
        except kvm.KvmError as e:
            raise VmmError(f"cannot create the VM: {e}") from None

    def _shutdown(self) -> None:
        if self.qmp is not None:
            self.qmp.stop_thread()
            self.qmp = None
        with self._lock:
            if self.board is not None:
                self.board.close()
                self.board = None
        self._restore_tty()
        if self._own_serial_fd:
            os.close(self._serial_fd)
        self._serial_fd = -1
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

    def _on_vcpu_event(self, event: VcpuEvent) -> None:
        kind = {"shutdown": "poweroff", "reset": "reset"}.get(event.kind, "error")
        self._post(kind, event.message)

    def _main_loop(self) -> tuple[int, str]:
        # poll, unlike epoll, accepts files and /dev/null (and, unlike selectors, costs no import)
        poller = select.poll()
        readable = select.POLLIN | select.POLLHUP | select.POLLERR
        poller.register(self._wake_fd, select.POLLIN)
        if self._stdin_fd >= 0:
            poller.register(self._stdin_fd, readable)
        stdin_registered = self._stdin_fd >= 0
        while self._exit is None:
            for fd, _ in poller.poll(self._tick_timers() * 1000):
                if fd == self._wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(self._wake_fd)
                elif fd == self._stdin_fd and not self._read_stdin():
                    poller.unregister(self._stdin_fd)
                    stdin_registered = False
                    self._stdin_fd = -1
            while self._requests and self._exit is None:
                self._handle(*self._requests.popleft())
            self._feed_serial()
            want_stdin = self._stdin_fd >= 0 and not self._rx_pending
            if want_stdin != stdin_registered:
                if want_stdin:
                    poller.register(self._stdin_fd, readable)
                else:
                    poller.unregister(self._stdin_fd)
                stdin_registered = want_stdin
        return self._exit

    def _tick_timers(self) -> float:
        """Let the RTC raise due interrupts; return how long the loop may sleep."""
        board = self.board
        if board is None or self._state != "running":
            return TIMER_POLL
        due = board.rtc.tick()
        if due is None:
            return TIMER_POLL
        return min(max(due - time.time(), 0.0), TIMER_POLL)

    def _handle(self, kind: str, detail: str) -> None:
        if kind == "poweroff":
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
        with self._lock:
            self._state = state
            if self.board is not None:
                self.board.stop()
        self._exit = (status, message)

    def _restart(self) -> None:
        with self._lock:
            if self.board is not None:
                self.board.close()
                self.board = None
            # Pending resets are served by this one. popleft, not iteration: the QMP thread
            # and signal handlers may append meanwhile.
            keep = []
            for _ in range(len(self._requests)):
                r = self._requests.popleft()
                if r[0] not in ("reset", "host-reset"):
                    keep.append(r)
            self._requests.extendleft(reversed(keep))
            self.board = self._new_board()
            if self.fb is not None:
                self.fb.damage.add_all()
            if self._state == "running":
                self.board.start()
            else:
                self._start_paused()

    def _start_paused(self) -> None:
        assert self.board is not None
        for v in self.board.vcpus:
            v.request_pause()
        self.board.start()

    def _emit(self, event: str, data: dict[str, Any] | None = None) -> None:
        if self.qmp is not None:
            self.qmp.emit(event, data)

    # ------------------------------------------------------------------ serial console

    def _open_serial(self) -> None:
        sink = self.cfg.serial
        if sink.kind == "file":
            try:
                self._serial_fd = os.open(
                    sink.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
                )
            except OSError as e:
                raise VmmError(f"--serial file:{sink.path}: {e.strerror}") from None
            self._own_serial_fd = True
        elif sink.kind == "stdio":
            self._serial_fd = sys.stdout.fileno()
            self._stdin_fd = self._open_stdin()

    def _open_stdin(self) -> int:
        try:
            fd = sys.stdin.fileno()
            os.fstat(fd)
        except (OSError, ValueError, AttributeError):
            return -1
        if os.isatty(fd):
            import termios  # noqa: PLC0415 - only a terminal needs it: faster boot
            import tty  # noqa: PLC0415

            self._saved_tty = termios.tcgetattr(fd)
            tty.setraw(fd)
        # Stays blocking (O_NONBLOCK would leak to the parent shell's terminal): the loop reads
        # only after poll() reported data, so one read never blocks.
        return fd

    def _restore_tty(self) -> None:
        if self._saved_tty is not None:
            import termios  # noqa: PLC0415 - loaded already by _open_stdin

            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved_tty)
            self._saved_tty = None

    def _serial_out(self, data: bytes) -> None:
        fd = self._serial_fd
        if fd < 0:
            return
        try:
            while data:
                n = os.write(fd, data)
                data = data[n:]
        except BlockingIOError:
            pass  # a stuck reader must not stall the vCPU: the console drops output
        except OSError:
            self._serial_fd = -1  # reader gone (EPIPE): keep the guest running

    def _read_stdin(self) -> bool:
        """Move stdin into the pending buffer; False at EOF."""
        try:
            data = os.read(self._stdin_fd, STDIN_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        if self._saved_tty is not None:
            data = self._filter_escape(data)
        self._rx_pending += data
        return True

    def _filter_escape(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if self._escape:
                self._escape = False
                if b == ESCAPE_QUIT:
                    self._post("quit")
                    continue
                out.append(b)  # Ctrl-A Ctrl-A (or anything else) passes the byte through
            elif b == ESCAPE:
                self._escape = True
            else:
                out.append(b)
        return bytes(out)

    def _feed_serial(self) -> None:
        board = self.board
        if not self._rx_pending or board is None:
            return
        n = board.serial.enqueue_input(bytes(self._rx_pending))
        del self._rx_pending[:n]

    # ------------------------------------------------------------------ VmControl (QMP thread)

    def status(self) -> str:
        return self._state

    def pause(self) -> None:
        with self._lock:
            if self._state != "running" or self.board is None:
                return
            if not self.board.pause(PAUSE_TIMEOUT):
                from vmgui.vmm.qmp import QmpError  # noqa: PLC0415

                raise QmpError("vCPUs did not stop in time")
            self._state = "paused"

    def resume(self) -> None:
        with self._lock:
            if self._state != "paused" or self.board is None:
                return
            self.board.resume()
            self._state = "running"

    def powerdown(self) -> None:
        board = self.board
        if board is not None:
            board.ged.press_power_button()

    def reset(self) -> None:
        self._post("host-reset")

    def quit(self) -> None:
        self._post("quit")

    def send_keys(self, scancodes: bytes) -> None:
        board = self.board
        # Like QEMU, keys the guest cannot take now (keyboard disabled, queue full) are dropped.
        if board is not None and not board.i8042.key_event(scancodes):
            self._dropped_keys += 1

    def screendump(self, path: str, fmt: str) -> None:
        if self.fb is None:
            from vmgui.vmm.qmp import QmpError  # noqa: PLC0415

            raise QmpError("this machine has no framebuffer (--framebuffer none)")
        self.fb.screendump(path, fmt)

    def cpus(self) -> list[CpuInfo]:
        from vmgui.vmm.qmp import CpuInfo  # noqa: PLC0415

        board = self.board
        if board is None:
            return []
        return [CpuInfo(v.index, v.native_id) for v in board.vcpus]

    def framebuffer(self) -> Framebuffer | None:
        return self.fb

    def dirty(self, consumer: Hashable) -> list[Rect]:
        fb = self.fb
        if fb is None:
            return []
        with self._lock:
            bitmap = self.board.dirty_log() if self.board is not None else None
        if bitmap is not None:
            fb.add_dirty_log(bitmap)
        return fb.take_damage(consumer)

    def stats(self) -> dict[str, Any]:
        board = self.board
        out: dict[str, Any] = {
            "status": self._state,
            "uptime": round(time.monotonic() - self._started, 3),
            "rss": process_rss(),
            "memory": self.cfg.memory,
        }
        if board is not None:
            out["vcpus"] = [{"index": v.index, "exits": v.exit_counts()} for v in board.vcpus]
            reads, writes, bad_reads, bad_writes = (
                sum(c) for c in zip(*(v.pio_counts for v in board.vcpus), strict=True)
            )
            unhandled: dict[str, int] = {}
            for v in board.vcpus:
                for port, n in list(v.pio_unhandled.items()):
                    unhandled[f"{port:#x}"] = unhandled.get(f"{port:#x}", 0) + n
            out["pio"] = {
                "reads": reads,
                "writes": writes,
                "unhandled_reads": bad_reads,
                "unhandled_writes": bad_writes,
                "unhandled": unhandled,
            }
            s = board.mmio.stats
            out["mmio"] = {
                "reads": s.reads,
                "writes": s.writes,
                "unhandled_reads": s.unhandled_reads,
                "unhandled_writes": s.unhandled_writes,
                "unhandled": {f"{a:#x}": n for a, n in list(s.unhandled_addrs.items())},
            }
            out["keys_dropped"] = self._dropped_keys
        return out
