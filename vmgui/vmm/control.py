"""The narrow interface between a control socket and the running machine.

Firecracker splits its `Vmm` (the assembled machine) from the runtime API controller that serves
requests; we do the same: machine.py assembles and runs Boards, runtime.py implements `VmControl`
over the current Board, and the QMP commands (qmp_commands.py) see nothing but `VmControl`.

Every method returns promptly whatever the guest or a device backend is doing: none waits for a
vCPU or an I/O thread. `pause()` asks every vCPU to stop and returns at once; a vCPU that is in the
middle of a device access finishes that access and then stops before it runs another guest
instruction, so the guest cannot tell the difference.
"""

from __future__ import annotations

from vmgui.vmm.record import TYPE_CHECKING, record

if TYPE_CHECKING:  # typing costs the VMM's start-up ~4 ms
    from collections.abc import Hashable
    from typing import Any, Protocol

    from vmgui.vmm.devices.framebuffer import Framebuffer, Rect

#: QEMU RunState values we use.
RUN_STATES = ("running", "paused", "shutdown", "internal-error", "prelaunch", "guest-panicked")


@record(frozen=True)
class VcpuInfo:
    """One vCPU as query-cpus-fast reports it (thread_id: the host thread running it)."""

    index: int
    thread_id: int


if TYPE_CHECKING:

    class VmControl(Protocol):
        """What the QMP commands may ask of the machine (implemented by runtime.VmRuntime).

        Methods raise `qmp_wire.QmpError` (or ValueError/OSError, reported as GenericError) to
        refuse.
        """

        def status(self) -> str:
            """Current QEMU RunState: one of RUN_STATES."""
            ...

        def pause(self) -> None:
            """Stop all vCPUs; returns at once (see the module docstring)."""
            ...

        def settled(self) -> bool:
            """True when no vCPU is between a pause request and its acknowledgement (each is
            parked, or running because the VM runs): lets `stop` reply once the VM has really
            stopped in the normal case, without ever waiting for it."""
            ...

        def resume(self) -> None: ...

        def powerdown(self) -> None:
            """Press the ACPI power button (GED event + SCI); the guest decides what to do."""
            ...

        def reboot(self) -> None:
            """Press the power button and, when the guest has powered off, start it again
            instead of ending (libvirt's reboot of a guest without an agent)."""
            ...

        def reset(self) -> None: ...

        def quit(self) -> None:
            """End the VMM; returns before the vCPUs have stopped."""
            ...

        def send_keys(self, scancodes: bytes) -> None:
            """Feed one key event's PC set-2 bytes (make, or F0/E0 F0 break) to the guest:
            the i8042 (it translates to set 1 itself), or while firmware runs its serial
            console (Board.key_event)."""
            ...

        def screendump(self, path: str, fmt: str) -> None:
            """Write the framebuffer to `path` as "ppm" or "png" (Framebuffer.screendump)."""
            ...

        def cpus(self) -> list[VcpuInfo]: ...

        def framebuffer(self) -> Framebuffer | None: ...

        def dirty(self, consumer: Hashable) -> list[Rect]:
            """Damage since `consumer` last asked: fetch KVM's dirty log into the Framebuffer,
            then return Framebuffer.take_damage(consumer)."""
            ...

        def stats(self) -> dict[str, Any]:
            """JSON-able counters: exits by reason per vCPU, I/O counts, uptime, RSS."""
            ...
