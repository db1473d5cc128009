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

The hot path reads the kvm_run page without ctypes attribute walks and makes no per-exit objects
beyond the ints: a port exit is two indexes into u32/u64 views of the page, the u64 (direction,
size, port, count) looked up in a per-vCPU table of what that access does, whose counters are
summed only when someone asks for statistics; an MMIO exit is one preallocated struct unpack.
"""

from __future__ import annotations

import contextlib
import signal
import struct
import threading
from collections.abc import Callable

from vmgui.vmm import kvm
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.record import TYPE_CHECKING, record

SIGKICK = signal.SIGUSR1
#: How often a stopper re-sends the kick while waiting for a vCPU to acknowledge (seconds).
KICK_RETRY = 0.05
MAX_EXIT_REASON = 64

#: Where the loop reads the kvm_run page, as indexes into u32 and u64 views of it (an index is
#: cheaper than an unpack): exit_reason, then at the exit union the port exit as one u64 key
#: (direction in byte 0, size in byte 1, port in bytes 2-3, count in bytes 4-7) and its
#: data_offset.
_REASON_U32 = kvm.RUN_EXIT_REASON // 4
_IO_KEY_U64 = kvm.RUN_EXIT_UNION // 8
_IO_DATA_OFFSET_U64 = _IO_KEY_U64 + 1
assert kvm.RUN_EXIT_REASON % 4 == 0 and kvm.RUN_EXIT_UNION % 8 == 0
_MASKS = tuple((1 << (8 * n)) - 1 for n in range(9))
#: Kinds of port access (direction, size, port, count) remembered per vCPU; beyond this (a guest
#: sweeping the port space) each access is resolved on the bus and counted in one sum. String
#: I/O (`rep insb`: any count) shares one kind per direction, size and port, whose key has a
#: count of 0, so that a firmware reading files of many lengths does not fill the table.
MAX_CACHED_PORTS = 1024
_KEY_WITHOUT_COUNT = 0xFFFF_FFFF

# What a remembered port access does: the first item of its entry
# (kind, tally, device function, its argument, access size). The tally is a list: exits,
# elements moved by string I/O, and 1 when a device decodes the port (else 0).
_DROP = 0  # a write to a port no device decodes: counted, nothing else
_WRITE_BYTE = 1  # a single one-byte `out`: device.write(offset, 1, byte)
_READ = 2  # a single `in` of any size: device.read(offset, size)
_OTHER = 3  # string I/O, wider writes, reads no device decodes: function(hit, key, data_offset)


def _never_called(*args: object) -> None:
    """The function of a _DROP entry, which the loop never calls."""


if TYPE_CHECKING:  # typing costs the VMM's start-up ~4 ms
    from typing import Any

    _PortHit = tuple[Callable[[int, int], int], Callable[[int, int, int], None], int]
    #: Typed loosely: the kind says which of the three call shapes the function has.
    _PortEntry = tuple[int, list[int], Callable[..., Any], Any, int]

_MMIO = struct.Struct("<QQIB")  # phys_addr data len is_write
_SYSTEM_EVENT = struct.Struct("<II")  # type ndata
_INTERNAL = struct.Struct("<II")  # suberror ndata
_U64 = struct.Struct("<Q")
_UNION = kvm.RUN_EXIT_UNION
_MMIO_DATA = _UNION + 8


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
        #: Exits per reason, except port I/O exits: those are the sum of `_ports` tallies.
        self.exits = [0] * MAX_EXIT_REASON
        #: Port exit key -> what it does and how often it happened (see `_port_entry`).
        self._ports: dict[int, _PortEntry] = {}
        #: Accesses beyond MAX_CACHED_PORTS kinds: exits, then elements read, written, read
        #: and written to ports no device decodes.
        self._overflow_exits = [0]
        self._overflow = [0, 0, 0, 0]
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

    def _port_tallies(self) -> list[tuple[int, int, int, bool]]:
        """(key, exits, elements, a device decodes the port) per remembered kind of access."""
        return [
            (key, tally[0], tally[1] if key >> 32 == 0 else tally[0] * (key >> 32), tally[2] == 1)
            for key, (_, tally, _, _, _) in list(self._ports.items())
        ]

    @property
    def pio_counts(self) -> list[int]:
        """Port I/O seen by this vCPU, in elements (`rep outsb` counts each byte): reads,
        writes, unhandled reads, unhandled writes."""
        counts = list(self._overflow)  # reads, writes, bad reads, bad writes (bad ones apart)
        for key, _, elements, handled in self._port_tallies():
            counts[(key & 0xFF) + (0 if handled else 2)] += elements
        return [counts[0] + counts[2], counts[1] + counts[3], counts[2], counts[3]]

    @property
    def pio_unhandled(self) -> dict[int, int]:
        """Accesses (reads + writes) per port that no device decodes, for the first
        Bus.MAX_TRACKED_UNHANDLED such ports."""
        out: dict[int, int] = {}
        for key, _, elements, handled in self._port_tallies():
            port = key >> 16 & 0xFFFF
            if handled or (port not in out and len(out) >= Bus.MAX_TRACKED_UNHANDLED):
                continue
            out[port] = out.get(port, 0) + elements
        return out

    def exit_counts(self) -> dict[str, int]:
        counts = list(self.exits)
        counts[kvm.KVM_EXIT_IO] = self._overflow_exits[0] + sum(
            exits for _, exits, _, _ in self._port_tallies()
        )
        return {kvm.exit_reason_name(r): n for r, n in enumerate(counts) if n}

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

    def _port_entry(self, key: int) -> _PortEntry:
        """What a kind of port access does, decided once (the bus layout never changes while
        vCPUs run): (kind, exits tally, device function, its argument, access size)."""
        out, size, port, count = key & 0xFF, key >> 8 & 0xFF, key >> 16 & 0xFFFF, key >> 32
        if count != 1:  # string I/O: the one kind for this port, direction and size
            key &= _KEY_WITHOUT_COUNT
            if (known := self._ports.get(key)) is not None:
                return known
        found = self.pio.find(port)
        hit: _PortHit | None = None if found is None else (found[0].read, found[0].write, found[1])
        if len(self._ports) >= MAX_CACHED_PORTS:
            return (_OTHER, self._overflow_exits, self._port_access_overflow, hit, size)
        entry: _PortEntry
        tally = [0, 0, 0 if hit is None else 1]
        if count != 1:
            entry = (_OTHER, tally, self._string_access, (hit, tally), size)
        elif hit is None:
            entry = (
                (_DROP, tally, _never_called, 0, size)
                if out
                else (_OTHER, tally, self._port_access, hit, size)
            )
        elif not out:
            entry = (_READ, tally, hit[0], hit[2], size)
        elif size == 1:
            entry = (_WRITE_BYTE, tally, hit[1], hit[2], size)
        else:
            entry = (_OTHER, tally, self._port_access, hit, size)
        self._ports[key] = entry
        return entry

    def _port_access(self, hit: _PortHit | None, key: int, off: int) -> None:
        """The accesses the loop does not do itself: string I/O (`rep outsb`, one device call
        per element), wider writes, and reads of ports no device decodes (all ones)."""
        out, size, count = key & 0xFF, key >> 8 & 0xFF, key >> 32
        mm = self.fd.run_mmap
        end = off + size * count
        if end > len(mm):  # KVM's own layout; checked so that a slice cannot silently shrink
            raise kvm.KvmError(0, f"port I/O data {off:#x}..{end:#x} is outside the kvm_run page")
        if hit is None:
            if not out:  # writes to nothing are dropped; reads from nothing float high
                mm[off:end] = b"\xff" * (end - off)
            return
        read, write, offset = hit
        mask = _MASKS[size]
        for a in range(off, end, size):
            if out:
                write(offset, size, int.from_bytes(mm[a : a + size], "little"))
            else:
                mm[a : a + size] = (read(offset, size) & mask).to_bytes(size, "little")

    def _string_access(
        self, hit_and_tally: tuple[_PortHit | None, list[int]], key: int, off: int
    ) -> None:
        """`_port_access` for string I/O, counting its elements (the count varies per exit)."""
        hit, tally = hit_and_tally
        tally[1] += key >> 32
        self._port_access(hit, key, off)

    def _port_access_overflow(self, hit: _PortHit | None, key: int, off: int) -> None:
        """`_port_access` for kinds of access beyond MAX_CACHED_PORTS, counted in one sum."""
        self._overflow[(key & 0xFF) + (2 if hit is None else 0)] += key >> 32
        self._port_access(hit, key, off)

    def _loop(self) -> None:
        # The u32/u64 views must be released before the kvm_run page can be unmapped.
        with memoryview(self.fd.run_mmap) as page, page.cast("I") as u32, page.cast("Q") as u64:
            self._run(u32, u64)

    def _run(self, u32: memoryview, u64: memoryview) -> None:
        """The hot path: one ioctl, two reads of the kvm_run page, one dict lookup and the
        device call per port exit.

        Port devices serialize themselves (each has its own lock), so no bus lock is taken
        here and port statistics are kept per vCPU (`pio_counts`, `pio_unhandled`). Nothing a
        C VMM would not do is done per exit: no errno copy, no allocation beyond the ints, no
        call for a port that no device decodes.
        """
        fd = self.fd.fd
        mm = self.fd.run_mmap
        enter_guest = kvm.enter_guest
        exits = self.exits
        ports = self._ports
        entry_for = self._port_entry
        masks = _MASKS
        mmio_unpack = _MMIO.unpack_from
        mmio_read, mmio_write = self.mmio.read, self.mmio.write
        RUN, EXIT_IO, EXIT_MMIO = kvm.KVM_RUN, kvm.KVM_EXIT_IO, kvm.KVM_EXIT_MMIO
        DROP, WRITE_BYTE, READ = _DROP, _WRITE_BYTE, _READ
        REASON, IO_KEY, IO_DATA = _REASON_U32, _IO_KEY_U64, _IO_DATA_OFFSET_U64
        while True:
            try:
                enter_guest(fd, RUN)
            except OSError as e:
                exits[kvm.run_interrupted(e)] += 1
                if not self._on_kick():
                    return
                continue
            reason = u32[REASON]
            if reason == EXIT_IO:
                key = u64[IO_KEY]
                try:
                    kind, tally, call, arg, size = ports[key]
                except KeyError:
                    kind, tally, call, arg, size = entry_for(key)
                tally[0] += 1
                if kind == WRITE_BYTE:
                    call(arg, 1, mm[u64[IO_DATA]])
                elif kind == READ:
                    off = u64[IO_DATA]
                    mm[off : off + size] = (call(arg, size) & masks[size]).to_bytes(size, "little")
                elif kind != DROP:
                    call(arg, key, u64[IO_DATA])
            elif reason == EXIT_MMIO:
                exits[EXIT_MMIO] += 1
                addr, data, length, is_write = mmio_unpack(mm, _UNION)
                if not 0 < length <= 8:
                    self._stop_error(f"MMIO access of {length} bytes at {addr:#x}")
                    return
                if is_write:
                    mmio_write(addr, length, data & masks[length])
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
