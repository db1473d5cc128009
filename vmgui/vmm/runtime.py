"""The run-time controller: run state and the current Board, served to the control socket.

machine.py assembles Boards and owns their lifecycle on the main thread; this class is what the
QMP commands drive (it implements control.VmControl). Its lock guards only the run state and
which Board is current, and is never held across anything that can wait (building or closing a
Board, joining a thread, host I/O), so every request returns promptly whatever the guest or a
device backend is doing. A Board is swapped out under the lock before it is closed, and every
call that reaches into a Board's KVM fds (IRQ lines, the dirty log) runs under the lock, so no
request ever touches a Board being torn down.
"""

from __future__ import annotations

import threading
import time

from vmgui.vmm.board import process_rss
from vmgui.vmm.control import VcpuInfo
from vmgui.vmm.record import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import Any

    from vmgui.vmm.board import Board
    from vmgui.vmm.devices.framebuffer import Framebuffer, Rect


class VmRuntime:
    """Implements control.VmControl; `post(kind)` hands what needs the main thread over to it."""

    def __init__(
        self, memory: int, fb: Framebuffer | None, post: Callable[[str], None]
    ) -> None:
        self._memory = memory
        self._fb = fb
        self._post = post
        self._lock = threading.Lock()
        self._state = "prelaunch"
        self._board: Board | None = None
        self._started = time.monotonic()
        self.dropped_keys = 0
        #: A reboot was asked for: the guest's next power-off restarts it (see `reboot`).
        self.restart_on_poweroff = False
        #: Extra counters for stats() (e.g. the serial console's dropped output).
        self.extra_stats: Callable[[], dict[str, Any]] | None = None

    # ---- for the machine (main thread)

    @property
    def board(self) -> Board | None:
        return self._board

    def install(self, board: Board) -> None:
        """Make `board` current and start its vCPUs: running, or parked if the VM is paused."""
        with self._lock:
            self._board = board
            if self._state == "prelaunch":
                self._state = "running"
            if self._state != "running":
                for v in board.vcpus:
                    v.request_pause()
            board.start()

    def take_board(self) -> Board | None:
        """Stop serving the current Board (the caller closes it, outside the lock)."""
        with self._lock:
            board, self._board = self._board, None
            return board

    def end(self, state: str) -> None:
        """The VM is over ("shutdown", "internal-error"): tell every vCPU to quit, don't wait."""
        with self._lock:
            self._state = state
            if self._board is not None:
                for v in self._board.vcpus:
                    v.request_quit()

    # ---- control.VmControl (the QMP thread)

    def status(self) -> str:
        return self._state

    def pause(self) -> None:
        with self._lock:
            if self._state != "running":
                return
            self._state = "paused"
            if self._board is not None:
                for v in self._board.vcpus:
                    v.request_pause()

    def settled(self) -> bool:
        board = self._board
        if board is None or self._state != "paused":
            return True
        return all(v.paused or v.done for v in board.vcpus)

    def resume(self) -> None:
        with self._lock:
            if self._state != "paused":
                return
            self._state = "running"
            if self._board is not None:
                self._board.resume()

    def powerdown(self) -> None:
        with self._lock:
            if self._board is not None:
                self._board.ged.press_power_button()

    def reboot(self) -> None:
        with self._lock:
            if self._board is not None:
                self.restart_on_poweroff = True
                self._board.ged.press_power_button()

    def reset(self) -> None:
        self._post("host-reset")

    def quit(self) -> None:
        self._post("quit")

    def send_keys(self, scancodes: bytes) -> None:
        with self._lock:
            board = self._board
            # Like QEMU, keys the guest cannot take now (keyboard off, queue full) are dropped.
            if board is not None and not board.key_event(scancodes):
                self.dropped_keys += 1

    def screendump(self, path: str, fmt: str) -> None:
        if self._fb is None:
            from vmgui.vmm.qmp_wire import QmpError  # only QMP calls this

            raise QmpError("this machine has no framebuffer (--framebuffer none)")
        self._fb.screendump(path, fmt)

    def cpus(self) -> list[VcpuInfo]:
        board = self._board
        if board is None:
            return []
        return [VcpuInfo(v.index, v.native_id) for v in board.vcpus]

    def framebuffer(self) -> Framebuffer | None:
        return self._fb

    def dirty(self, consumer: Hashable) -> list[Rect]:
        fb = self._fb
        if fb is None:
            return []
        with self._lock:
            bitmap = self._board.dirty_log() if self._board is not None else None
        if bitmap is not None:
            fb.add_dirty_log(bitmap)
        return fb.take_damage(consumer)

    def stats(self) -> dict[str, Any]:
        board = self._board
        out: dict[str, Any] = {
            "status": self._state,
            "uptime": round(time.monotonic() - self._started, 3),
            "rss": process_rss(),
            "memory": self._memory,
        }
        if board is not None:
            out.update(board.stats())
        out["keys_dropped"] = self.dropped_keys
        if self.extra_stats is not None:
            out.update(self.extra_stats())
        return out
