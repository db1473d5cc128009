"""QMP commands: argument checking and one handler per command, QEMU's names and semantics.

A handler gets a `CommandContext` -- the machine's narrow `VmControl`, the calling client's
number, the event sink, the keyboard queue and the damage subscription switch; never the server
-- and the arguments. It returns the JSON result, or (result, fd) to pass an fd along with it,
and refuses with QmpError. Commands that change run state emit their event after the VmControl
call succeeded (see qmp.py for which events come from where).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmgui.vmm.keymap import KeyEncoder, KeymapError, qcode_for_number
from vmgui.vmm.qmp_wire import QmpError

if TYPE_CHECKING:
    from vmgui.vmm.control import VmControl

log = logging.getLogger(__name__)

QEMU_VERSION = {"major": 8, "minor": 2, "micro": 0}
PACKAGE = "vmgui-vmm"
#: QEMU's default `send-key` hold time in milliseconds.
DEFAULT_HOLD_MS = 100
MAX_HOLD_MS = 10_000
MAX_KEYS = 16
#: How long `stop` waits (without blocking the loop) for the vCPUs to park before it replies.
STOP_SETTLE = 0.02
STOP_SETTLE_POLL = 0.001
#: Key events waiting for the input loop; beyond this, keyboard commands are refused.
MAX_INPUT_QUEUED = 4096


class KeyboardQueue:
    """Key events in order, delivered by `deliver()` with the holds QEMU's send-key implies."""

    def __init__(self) -> None:
        self.encoder = KeyEncoder()
        self._queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()

    def room(self) -> int:
        """How many more key events `put` may take now."""
        return MAX_INPUT_QUEUED - self._queue.qsize()

    def put(self, scancodes: bytes, delay_after: float = 0.0) -> None:
        self._queue.put_nowait((scancodes, delay_after))

    def qsize(self) -> int:
        return self._queue.qsize()

    async def deliver(self, control: VmControl) -> None:
        """Run forever on the server's loop: one event at a time, sleeping `delay_after`."""
        while True:
            codes, delay = await self._queue.get()
            if codes:
                try:
                    control.send_keys(codes)
                except Exception:  # a broken keyboard must not take the control socket down
                    log.exception("send_keys failed")
            if delay > 0:
                await asyncio.sleep(delay)


@dataclass(frozen=True)
class CommandContext:
    """Everything a command handler may use."""

    control: VmControl
    client: int  # the calling connection's number: its damage consumer key
    emit: Callable[[str, dict[str, Any] | None], None]
    keyboard: KeyboardQueue
    subscribe_damage: Callable[[bool], None]


Handler = Callable[[CommandContext, dict[str, Any]], Any]


_TYPE_NAMES = {str: "string", bool: "boolean", int: "int", list: "array", dict: "object"}


def arg(args: dict[str, Any], name: str, typ: type, default: Any = ..., prefix: str = "") -> Any:
    if name not in args:
        if default is ...:
            raise QmpError(f"Parameter '{prefix}{name}' is missing")
        return default
    value = args[name]
    ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
    if not ok:
        raise QmpError(f"Invalid parameter type for '{prefix}{name}', expected: {_TYPE_NAMES[typ]}")
    return value


def no_extra(args: dict[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
    for name in args:
        if name not in allowed:
            raise QmpError(f"Parameter '{prefix}{name}' is unexpected")


def _key_qcode(key: Any, where: str) -> str:
    """A KeyValue ({"type": "qcode"|"number", "data": ...}) -> qcode name."""
    if not isinstance(key, dict):
        raise QmpError(f"Invalid parameter type for '{where}', expected: object")
    kind = arg(key, "type", str, prefix=f"{where}.")
    if kind == "qcode":
        no_extra(key, ("type", "data"), f"{where}.")
        return str(arg(key, "data", str, prefix=f"{where}."))
    if kind == "number":
        no_extra(key, ("type", "data"), f"{where}.")
        number = arg(key, "data", int, prefix=f"{where}.")
        try:
            return qcode_for_number(number)
        except KeymapError as e:
            raise QmpError(str(e)) from None
    raise QmpError(f"Parameter '{where}.type' does not accept value '{kind}'")


def _check_input_room(ctx: CommandContext, events: int) -> None:
    """Refuse a whole keyboard command the input queue cannot take (no half-pressed keys)."""
    if events > ctx.keyboard.room():
        raise QmpError("Too many queued key events: wait for earlier keys to be delivered")


def _cmd_query_status(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    status = ctx.control.status()
    return {"running": status == "running", "singlestep": False, "status": status}


async def _cmd_stop(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    was = ctx.control.status()
    if was == "running":
        ctx.control.pause()
        # Reply once every vCPU has parked, as QEMU does, but never wait long: a vCPU inside a
        # stuck device call parks when the call returns, before it runs guest code again.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_SETTLE
        while not ctx.control.settled() and loop.time() < deadline:
            await asyncio.sleep(STOP_SETTLE_POLL)
        ctx.emit("STOP", None)
    return {}


def _cmd_cont(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    status = ctx.control.status()
    if status == "running":
        return {}
    if status in ("shutdown", "internal-error", "guest-panicked"):
        raise QmpError("Resetting the Virtual Machine is required")
    ctx.control.resume()
    ctx.emit("RESUME", None)
    return {}


def _cmd_system_powerdown(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    ctx.control.powerdown()
    ctx.emit("POWERDOWN", None)
    return {}


def _cmd_reboot(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """x-vmgui-reboot: the power button, then a restart when the guest powers off."""
    no_extra(args, ())
    ctx.control.reboot()
    ctx.emit("POWERDOWN", None)
    return {}


def _cmd_system_reset(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    ctx.control.reset()
    ctx.emit("RESET", {"guest": False, "reason": "host-qmp-system-reset"})
    return {}


def _cmd_quit(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    loop = asyncio.get_running_loop()

    def finish() -> None:
        # After the reply is queued, as QEMU: return first, then SHUTDOWN, then the process ends.
        ctx.emit("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
        ctx.control.quit()

    loop.call_soon(finish)
    return {}


def _cmd_send_key(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ("keys", "hold-time"))
    keys = arg(args, "keys", list)
    hold = arg(args, "hold-time", int, DEFAULT_HOLD_MS)
    if not keys:
        raise QmpError("Parameter 'keys' must not be empty")
    if len(keys) > MAX_KEYS:
        raise QmpError(f"Too many keys: at most {MAX_KEYS} at once")
    if not 0 <= hold <= MAX_HOLD_MS:
        raise QmpError(f"Parameter 'hold-time' must be between 0 and {MAX_HOLD_MS} ms")
    qcodes = [_key_qcode(k, f"keys[{i}]") for i, k in enumerate(keys)]
    _check_input_room(ctx, 2 * len(qcodes))
    try:
        presses = [ctx.keyboard.encoder.encode(q, True) for q in qcodes]
        releases = [ctx.keyboard.encoder.encode(q, False) for q in reversed(qcodes)]
    except KeymapError as e:
        raise QmpError(str(e)) from None
    for i, codes in enumerate(presses):
        ctx.keyboard.put(codes, hold / 1000.0 if i == len(presses) - 1 else 0.0)
    for codes in releases:
        ctx.keyboard.put(codes)
    return {}


def _cmd_input_send_event(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ("events", "device", "head"))
    events = arg(args, "events", list)
    arg(args, "device", str, None)
    arg(args, "head", int, None)
    parsed: list[tuple[str, bool]] = []
    for i, ev in enumerate(events):
        where = f"events[{i}]"
        if not isinstance(ev, dict):
            raise QmpError(f"Invalid parameter type for '{where}', expected: object")
        kind = arg(ev, "type", str, prefix=f"{where}.")
        data = arg(ev, "data", dict, prefix=f"{where}.")
        if kind in ("btn", "rel", "abs", "mtt"):
            raise QmpError(
                f"Input event type '{kind}' is not supported: this machine has no pointing device"
            )
        if kind != "key":
            raise QmpError(f"Parameter '{where}.type' does not accept value '{kind}'")
        no_extra(data, ("down", "key"), f"{where}.data.")
        down = arg(data, "down", bool, prefix=f"{where}.data.")
        key = arg(data, "key", dict, prefix=f"{where}.data.")
        parsed.append((_key_qcode(key, f"{where}.data.key"), down))
    _check_input_room(ctx, len(parsed))
    try:
        events = [ctx.keyboard.encoder.encode(q, down) for q, down in parsed]
    except KeymapError as e:
        raise QmpError(str(e)) from None
    for codes in events:
        ctx.keyboard.put(codes)
    return {}


def _cmd_screendump(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ("filename", "device", "head", "format"))
    filename = arg(args, "filename", str)
    device = arg(args, "device", str, None)
    head = arg(args, "head", int, None)
    fmt = arg(args, "format", str, "ppm")
    if fmt not in ("ppm", "png"):
        raise QmpError(f"Parameter 'format' does not accept value '{fmt}'")
    if device is not None:
        raise QmpError(f"Device '{device}' not found", "DeviceNotFound")
    if head not in (None, 0):
        raise QmpError(f"Head '{head}' not found for the framebuffer")
    if ctx.control.framebuffer() is None:
        raise QmpError("There is no console to take a screendump from")
    try:
        ctx.control.screendump(filename, fmt)
    except OSError as e:
        raise QmpError(f"failed to write '{filename}': {e.strerror or e}") from None
    return {}


def _cmd_query_cpus_fast(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    return [
        {
            "cpu-index": cpu.index,
            "qom-path": f"/machine/unattached/device[{cpu.index}]",
            "thread-id": cpu.thread_id,
            "props": {"core-id": 0, "thread-id": 0, "socket-id": cpu.index},
            "target": "x86_64",
        }
        for cpu in ctx.control.cpus()
    ]


def _cmd_query_version(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    return {"qemu": QEMU_VERSION, "package": PACKAGE}


def _cmd_query_commands(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    return [{"name": name} for name in ["qmp_capabilities", *COMMANDS]]


def _cmd_framebuffer(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    fb = ctx.control.framebuffer()
    if fb is None:
        raise QmpError("This machine has no framebuffer", "DeviceNotFound")
    i = fb.info
    info = {
        "width": i.width,
        "height": i.height,
        "stride": i.stride,
        "format": "x8r8g8b8",
        "size": i.size,
        "base": i.base,
    }
    return info, fb.fd


def _cmd_dirty(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    if ctx.control.framebuffer() is None:
        raise QmpError("This machine has no framebuffer", "DeviceNotFound")
    return [r.as_dict() for r in ctx.control.dirty(ctx.client)]


def _cmd_damage_subscribe(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """Push `X_VMGUI_DAMAGE` events to this client (see qmp.py): the first one covers the whole
    screen, later ones only what changed; nothing is sent while the screen is still."""
    no_extra(args, ("enable",))
    enable = arg(args, "enable", bool, True)
    if enable and ctx.control.framebuffer() is None:
        raise QmpError("This machine has no framebuffer", "DeviceNotFound")
    ctx.subscribe_damage(enable)
    return {}


def _cmd_stats(ctx: CommandContext, args: dict[str, Any]) -> Any:
    no_extra(args, ())
    return ctx.control.stats()


COMMANDS: dict[str, Handler] = {
    "query-status": _cmd_query_status,
    "stop": _cmd_stop,
    "cont": _cmd_cont,
    "system_powerdown": _cmd_system_powerdown,
    "system_reset": _cmd_system_reset,
    "quit": _cmd_quit,
    "send-key": _cmd_send_key,
    "input-send-event": _cmd_input_send_event,
    "screendump": _cmd_screendump,
    "query-cpus-fast": _cmd_query_cpus_fast,
    "query-version": _cmd_query_version,
    "query-commands": _cmd_query_commands,
    "x-vmgui-framebuffer": _cmd_framebuffer,
    "x-vmgui-dirty": _cmd_dirty,
    "x-vmgui-damage-subscribe": _cmd_damage_subscribe,
    "x-vmgui-stats": _cmd_stats,
    "x-vmgui-reboot": _cmd_reboot,
}
