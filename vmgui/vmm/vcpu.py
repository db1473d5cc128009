"""vCPU threads: one thread per vCPU loops on KVM_RUN and turns exits into bus accesses.

Exits handled here: IO -> the port bus, MMIO -> the MMIO bus, HLT (only without an in-kernel
irqchip), INTR (a kick: pause/quit), SHUTDOWN (triple fault = reset), SYSTEM_EVENT (PSCI-style
shutdown/reset/crash). INTERNAL_ERROR, FAIL_ENTRY and anything unexpected stop the VM with a
one-line reason naming the exit, the suberror and the guest RIP. Exits are counted per reason.

Kicking: `request_pause()`/`request_quit()` set `immediate_exit` in the kvm_run page under the
control lock, then send SIGKICK to the thread. Either the signal interrupts a KVM_RUN in progress
(EINTR) or the flag makes the next KVM_RUN return at once, so a kick is never lost. The thread
clears the flag only under the same lock after it has seen the request, so it cannot undo a
newer kick. A Python-level no-op handler for SIGKICK must be installed by the main thread
(`install_kick_handler`); without a handler the signal would kill the process.

The hot path (IO and MMIO exits) reads the kvm_run page with struct.unpack_from on the mmap and
preallocated Structs: no ctypes attribute walks and no per-exit objects beyond the ints.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import struct
import threading
from collections.abc import Callable

from vmgui.vmm import kvm
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.record import record

SIGKICK = signal.SIGUSR1
#: How often a stopper re-sends the kick while waiting for a vCPU to acknowledge (seconds).
KICK_RETRY = 0.05
MAX_EXIT_REASON = 64

#: exit_reason, then (at the exit union, 24 bytes on) io: direction size port count data_offset
_EXIT_HEADER = struct.Struct("<I20xBBHIQ")
_MASKS = tuple((1 << (8 * n)) - 1 for n in range(9))
#: Ports resolved per vCPU; beyond this (a guest sweeping the port space) lookups go to the bus.
MAX_CACHED_PORTS = 1024
_MMIO = struct.Struct("<QQIB")  # phys_addr data len is_write
_SYSTEM_EVENT = struct.Struct("<II")  # type ndata
_INTERNAL = struct.Struct("<II")  # suberror ndata
_U64 = struct.Struct("<Q")
_UNION = kvm.RUN_EXIT_UNION
_MMIO_DATA = _UNION + 8


#: ioctl(2) for KVM_RUN without ctypes' errno bookkeeping: a use_errno function swaps a
#: per-thread copy of errno around every call (~0.2-0.3 us of each exit, measured); the loop
#: reads the thread's own errno (`_errno_location`) and only after a failed call.
_libc = ctypes.CDLL(None)
_run_ioctl = _libc["ioctl"]
_run_ioctl.restype = ctypes.c_int
_errno_location = _libc["__errno_location"]
_errno_location.restype = ctypes.c_void_p


def install_kick_handler() -> None:
    """Install the no-op SIGKICK handler (main thread only; idempotent)."""
    if signal.getsignal(SIGKICK) in (signal.SIG_DFL, signal.SIG_IGN, None):
        signal.signal(SIGKICK, _ignore_kick)


def _ignore_kick(signum: int, frame: object) -> None:
    """The kick only needs to interrupt KVM_RUN; there is nothing to do in Python."""


@record(frozen=True)
class VcpuEvent:
    """Why a vCPU thread stopped running the guest; the machine decides what it means."""

    kind: str  # "reset" | "shutdown" | "error"
    vcpu: int
    message: str = ""


class VcpuThread:
    """Runs one vCPU on its own thread until the machine quits it or the guest stops."""

    def __init__(
        self,
        fd: kvm.VcpuFd,
        pio: Bus,
        mmio: Bus,
        on_event: Callable[[VcpuEvent], None],
    ) -> None:
        self.fd = fd
        self.index = fd.vcpu_id
        self.pio = pio
        self.mmio = mmio
        self.on_event = on_event
        self.exits = [0] * MAX_EXIT_REASON
        #: Port accesses a device handled: reads, writes (elements, so `rep outsb` counts each).
        self._handled = [0, 0]
        #: Accesses to ports no device decodes, per port, reads and writes apart; ports beyond
        #: Bus.MAX_TRACKED_UNHANDLED each are only summed in `_untracked` (reads, writes).
        self._unhandled: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._untracked = [0, 0]
        self._ports: dict[
            int, tuple[Callable[[int, int], int], Callable[[int, int, int], None], int] | None
        ] = {}
        self.thread: threading.Thread | None = None
        self.native_id = 0
        self._cond = threading.Condition()
        self._pause = False
        self._quit = False
        self._paused = False  # acknowledged: the thread is waiting, not in KVM_RUN
        self._done = False

    # ---- control (any thread)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._main, name=f"vcpu{self.index}", daemon=True)
        self.thread.start()

    def _kick(self) -> None:
        t = self.thread
        if t is not None and t.ident is not None and t.is_alive():
            with contextlib.suppress(ProcessLookupError):  # the thread just ended
                signal.pthread_kill(t.ident, SIGKICK)

    def request_pause(self) -> None:
        with self._cond:
            self._pause = True
            self.fd.immediate_exit = True
        self._kick()

    def wait_paused(self, timeout: float) -> bool:
        """Block until the thread acknowledged the pause (or ended); re-kick while waiting."""
        waited = 0.0
        with self._cond:
            while not (self._paused or self._done) and waited < timeout:
                self._cond.wait(KICK_RETRY)
                waited += KICK_RETRY
                if not (self._paused or self._done):
                    self.fd.immediate_exit = True
                    self._kick()
            return self._paused or self._done

    def resume(self) -> None:
        with self._cond:
            self._pause = False
            self._cond.notify_all()

    def request_quit(self) -> None:
        with self._cond:
            self._quit = True
            self.fd.immediate_exit = True
            self._cond.notify_all()
        self._kick()

    def join(self, timeout: float | None) -> bool:
        """Wait for the thread to end (None: for as long as it takes), re-kicking it; True when
        it has ended."""
        t = self.thread
        if t is None:
            return True
        waited = 0.0
        while t.is_alive() and (timeout is None or waited < timeout):
            step = KICK_RETRY if timeout is None else min(KICK_RETRY, timeout - waited)
            t.join(step)
            waited += step
            if t.is_alive():
                self.fd.immediate_exit = True
                self._kick()
        return not t.is_alive()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def done(self) -> bool:
        """The thread has ended (or never started)."""
        t = self.thread
        return self._done or t is None

    @property
    def pio_counts(self) -> list[int]:
        """Port I/O seen by this vCPU: reads, writes, unhandled reads, unhandled writes."""
        bad_reads = sum(list(self._unhandled[0].values())) + self._untracked[0]
        bad_writes = sum(list(self._unhandled[1].values())) + self._untracked[1]
        return [self._handled[0] + bad_reads, self._handled[1] + bad_writes, bad_reads, bad_writes]

    @property
    def pio_unhandled(self) -> dict[int, int]:
        """Accesses (reads + writes) per tracked port that no device decodes."""
        out = dict(self._unhandled[0])
        for port, n in list(self._unhandled[1].items()):
            out[port] = out.get(port, 0) + n
        return out

    def _first_unhandled(self, port: int, direction: int, count: int) -> None:
        tally = self._unhandled[direction]
        if len(tally) < Bus.MAX_TRACKED_UNHANDLED:
            tally[port] = count
        else:
            self._untracked[direction] += count

    def exit_counts(self) -> dict[str, int]:
        return {kvm.exit_reason_name(r): n for r, n in enumerate(self.exits) if n}

    # ---- the vCPU thread

    def _main(self) -> None:
        self.native_id = threading.get_native_id()
        try:
            self._loop()
        except Exception as e:  # a VMM bug must stop the VM with a message, not hang it
            import logging  # only this error path logs: faster boot

            logging.getLogger(__name__).exception("vCPU %d: internal error", self.index)
            self.on_event(VcpuEvent("error", self.index, f"vCPU {self.index}: internal error: {e}"))
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _on_kick(self) -> bool:
        """Handle pause/quit requests; False when the thread must end."""
        with self._cond:
            while self._pause and not self._quit:
                self._paused = True
                self._cond.notify_all()
                self._cond.wait()
            self._paused = False
            self._cond.notify_all()
            if self._quit:
                return False
            self.fd.immediate_exit = False
            return True

    def _port(
        self, port: int
    ) -> tuple[Callable[[int, int], int], Callable[[int, int, int], None], int] | None:
        """Resolve a port once; the bus layout never changes while vCPUs run."""
        hit = self.pio.find(port)
        entry = None if hit is None else (hit[0].read, hit[0].write, hit[1])
        if len(self._ports) < MAX_CACHED_PORTS:
            self._ports[port] = entry
        return entry

    def _loop(self) -> None:
        """The hot path: one ioctl, one unpack, a dict lookup and the device call per port exit.

        Port devices serialize themselves (each has its own lock), so no bus lock is taken
        here and port statistics are kept per vCPU (`pio_counts`, `pio_unhandled`). Nothing a
        C VMM would not do is done per exit: no errno copy, no allocation beyond the ints, no
        call for a port that no device decodes.
        """
        fd = self.fd.fd
        mm = self.fd.run_mmap
        ioctl = _run_ioctl
        thread_errno = ctypes.c_int.from_address(_errno_location())  # this thread's errno
        exits = self.exits
        counts = self._handled
        unhandled = self._unhandled
        first_unhandled = self._first_unhandled
        ports = self._ports
        resolve = self._port
        header = _EXIT_HEADER.unpack_from
        mmio_unpack = _MMIO.unpack_from
        mmio_read, mmio_write = self.mmio.read, self.mmio.write
        RUN, EXIT_IO, EXIT_MMIO = kvm.KVM_RUN, kvm.KVM_EXIT_IO, kvm.KVM_EXIT_MMIO
        at = kvm.RUN_EXIT_REASON
        while True:
            if ioctl(fd, RUN, 0) < 0:
                err = thread_errno.value
                if err not in (errno.EINTR, errno.EAGAIN):
                    raise kvm.KvmError(err, f"KVM_RUN failed: {os.strerror(err)}")
                exits[kvm.KVM_EXIT_INTR] += 1
                if not self._on_kick():
                    return
                continue
            reason, direction, size, port, count, off = header(mm, at)
            if reason == EXIT_IO:
                exits[EXIT_IO] += 1
                try:
                    entry = ports[port]
                except KeyError:
                    entry = resolve(port)
                if entry is None:  # no device: writes dropped, reads all-ones, counted
                    try:
                        unhandled[direction][port] += count
                    except KeyError:
                        first_unhandled(port, direction, count)
                    if not direction:
                        mm[off : off + size * count] = b"\xff" * (size * count)
                elif direction:  # out
                    counts[1] += count
                    if size == 1 and count == 1:
                        entry[1](entry[2], 1, mm[off])
                    else:
                        for i in range(count):
                            a = off + i * size
                            entry[1](entry[2], size, int.from_bytes(mm[a : a + size], "little"))
                else:
                    counts[0] += count
                    for i in range(count):
                        a = off + i * size
                        value = entry[0](entry[2], size) & _MASKS[size]
                        mm[a : a + size] = value.to_bytes(size, "little")
            elif reason == EXIT_MMIO:
                exits[EXIT_MMIO] += 1
                addr, data, length, is_write = mmio_unpack(mm, _UNION)
                if not 0 < length <= 8:
                    self._stop_error(f"MMIO access of {length} bytes at {addr:#x}")
                    return
                if is_write:
                    mmio_write(addr, length, data & _MASKS[length])
                else:
                    value = mmio_read(addr, length)
                    mm[_MMIO_DATA : _MMIO_DATA + length] = value.to_bytes(length, "little")
            else:
                exits[reason if reason < MAX_EXIT_REASON else 0] += 1
                if reason == kvm.KVM_EXIT_INTR:
                    if not self._on_kick():
                        return
                elif not self._slow_exit(reason):
                    return

    def _slow_exit(self, reason: int) -> bool:
        """Rare exits; False when the thread must stop running the guest."""
        mm = self.fd.run_mmap
        if reason in (kvm.KVM_EXIT_HLT, kvm.KVM_EXIT_IRQ_WINDOW_OPEN):
            return True  # HLT exits only without an in-kernel irqchip; just re-enter
        if reason == kvm.KVM_EXIT_SHUTDOWN:
            self.on_event(VcpuEvent("reset", self.index, "triple fault"))
            return self._park()
        if reason == kvm.KVM_EXIT_SYSTEM_EVENT:
            kind, _ = _SYSTEM_EVENT.unpack_from(mm, _UNION)
            if kind == kvm.KVM_SYSTEM_EVENT_SHUTDOWN:
                self.on_event(VcpuEvent("shutdown", self.index, "system event"))
            elif kind == kvm.KVM_SYSTEM_EVENT_RESET:
                self.on_event(VcpuEvent("reset", self.index, "system event"))
            else:
                self._stop_error(f"system event {kind}")
                return False
            return self._park()
        if reason == kvm.KVM_EXIT_INTERNAL_ERROR:
            sub, ndata = _INTERNAL.unpack_from(mm, _UNION)
            what = kvm.INTERNAL_ERROR_NAMES.get(sub, "internal error")
            data = [_U64.unpack_from(mm, _UNION + 8 + 8 * i)[0] for i in range(min(ndata, 4))]
            extra = " data " + " ".join(f"{d:#x}" for d in data) if data else ""
            self._stop_error(f"KVM_EXIT_INTERNAL_ERROR: {what} (suberror {sub}){extra}")
            return False
        if reason == kvm.KVM_EXIT_FAIL_ENTRY:
            (hw,) = _U64.unpack_from(mm, _UNION)
            self._stop_error(f"KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {hw:#x}")
            return False
        self._stop_error(f"unexpected exit KVM_EXIT_{kvm.exit_reason_name(reason)} ({reason})")
        return False

    def _park(self) -> bool:
        """After a power event: wait for the machine to pause or quit us, never re-enter."""
        with self._cond:
            while not (self._quit or self._pause):
                self._cond.wait()
        return self._on_kick()

    def _stop_error(self, what: str) -> None:
        try:
            rip = f"{self.fd.get_regs().rip:#x}"
        except kvm.KvmError:
            rip = "unknown"
        self.on_event(
            VcpuEvent("error", self.index, f"vCPU {self.index}: {what} at guest RIP {rip}")
        )
