"""QMP control socket: a subset of the QEMU Machine Protocol, so standard clients drive our VMM.

Wire format as QEMU's: the server greets with {"QMP": {...}}, a client must send
`qmp_capabilities` before anything else, then `{"execute": CMD, "arguments": {...}, "id": ...}`
gets `{"return": ...}` or `{"error": {"class", "desc"}}` with `id` echoed; asynchronous events are
`{"event", "data", "timestamp": {"seconds", "microseconds"}}`. Every message we send ends in CRLF.

`x-vmgui-framebuffer` is ours: its JSON return travels with the framebuffer memfd attached to the
first byte of the reply line as SCM_RIGHTS ancillary data (receive it with recvmsg).
`x-vmgui-damage-subscribe` (ours) makes the server push `X_VMGUI_DAMAGE {"rects": [{x, y, width,
height}, ...]}` events to that client: KVM's dirty log is read at DAMAGE_HZ while someone is
subscribed, and an event goes out only when pixels changed, so a still screen costs a viewer
nothing. The first event after subscribing covers the whole screen. `x-vmgui-reboot` (ours) is
a graceful reboot: the ACPI power button, and when the guest has powered off the machine starts
again (RESET {guest: true, reason: "guest-shutdown"}) instead of ending.

Framing: a message too long (qmp_wire.MAX_MESSAGE) or too deeply nested gets an error reply and
the connection is closed, since the rest of the stream can no longer be split reliably.

Threading: the server runs on one asyncio loop (the caller's, via `start()`, or its own thread via
`start_thread()`); VmControl methods are called on that loop's thread and never block it (see
control.py). `emit()` may be called from any thread (vCPU threads).

Events: the server emits the events of host commands itself after the VmControl call returned --
STOP (`stop` while running), RESUME (`cont`), POWERDOWN (`system_powerdown`),
RESET {guest: false, reason: "host-qmp-system-reset"}, SHUTDOWN {guest: false, reason:
"host-qmp-quit"}. The machine emits what the guest causes: SHUTDOWN {guest: true, reason:
"guest-shutdown" | "guest-reset"}, RESET {guest: true, reason: "guest-reset"}, and STOP when the VM
stops by itself (e.g. an emulation failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from vmgui.vmm.qmp_commands import (
    COMMANDS,
    PACKAGE,
    QEMU_VERSION,
    CommandContext,
    KeyboardQueue,
    no_extra,
)
from vmgui.vmm.qmp_wire import (
    FramingError,
    JsonSplitter,
    QmpError,
    encode,
    error_reply,
    send_with_fd,
    timestamp,
)
from vmgui.vmm.unix_socket import bind_unix_socket, inode_of, unlink_if_same

if TYPE_CHECKING:
    from vmgui.vmm.control import VmControl

__all__ = ["QmpError", "QmpServer"]

log = logging.getLogger(__name__)

#: Unread replies/events queued for one client before it is disconnected as stuck.
MAX_QUEUED = 4096
#: Unread bytes queued for one client before it is disconnected (replies echo the request's
#: `id`, so one reply can be as large as a request).
MAX_QUEUED_BYTES = 16 << 20
#: Seconds before accepting again after accept() failed (e.g. out of fds).
ACCEPT_RETRY = 0.1
#: How often KVM's dirty log is read while a client subscribed to damage (at most 60 Hz).
DAMAGE_HZ = 60
#: At shutdown, how long queued events (SHUTDOWN...) may take to reach slow clients.
DRAIN_TIMEOUT = 0.15
#: The damage event (x-vmgui-damage-subscribe).
DAMAGE_EVENT = "X_VMGUI_DAMAGE"


class Client:
    """One connection: negotiation state and an ordered outgoing queue."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.negotiated = False
        self.queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self.queued_bytes = 0  # queued or being sent
        self.closed = False
        self.damage = False  # subscribed to DAMAGE_EVENT

    def send(self, data: bytes, fd: int = -1) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= MAX_QUEUED or self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            # A client that never reads must not grow our memory: hang up on it.
            self.closed = True
            self.queue.put_nowait(None)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            return
        self.queued_bytes += len(data)
        self.queue.put_nowait((data, fd))


class QmpServer:
    """Serves QMP on a Unix socket (mode 0600) to any number of clients."""

    def __init__(self, control: VmControl, path: str | os.PathLike[str]) -> None:
        """`control` is all the commands see of the machine (control.VmControl)."""
        self.control = control
        self.path = os.fspath(path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._clients: set[Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_client = 0
        self.keyboard: KeyboardQueue | None = None
        self._damage_task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    async def start(self) -> None:
        """Bind the socket and accept clients on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._listener = bind_unix_socket(self.path)
        self._inode = inode_of(self.path)
        self.keyboard = KeyboardQueue()
        self._spawn(self._accept_loop())
        self._spawn(self.keyboard.deliver(self.control))

    async def aclose(self) -> None:
        """Stop accepting, disconnect clients, remove our socket file (if it is still ours)."""
        if self._listener is not None:
            self._unlink_if_ours()
            self._listener.close()
            self._listener = None
        for client in list(self._clients):
            client.closed = True
            client.queue.put_nowait(None)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in list(self._clients):
            client.sock.close()
        self._clients.clear()

    def start_thread(self) -> None:
        """Run the server on its own loop in a daemon thread; returns once the socket listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # reported to the caller below
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.aclose())
                loop.close()

        self._thread = threading.Thread(target=run, name="qmp", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop_thread(self, timeout: float = DRAIN_TIMEOUT + 0.1) -> None:
        """Flush queued events to clients, then stop the thread started by start_thread()."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(lambda: self._spawn(self._drain_and_stop(loop)))
        thread.join(timeout)
        self._thread = None

    async def _drain_and_stop(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = loop.time() + DRAIN_TIMEOUT
        while any(c.queued_bytes for c in self._clients) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        loop.stop()

    def _unlink_if_ours(self) -> None:
        unlink_if_same(self.path, self._inode)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- events

    def emit(self, event: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to every negotiated client; callable from any thread."""
        encoded = _event(event, data)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._broadcast(encoded)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(self._broadcast, encoded)

    def _broadcast(self, encoded: bytes) -> None:
        for client in self._clients:
            if client.negotiated:
                client.send(encoded)

    # ---- connections

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            try:
                sock, _ = await loop.sock_accept(self._listener)
            except OSError as e:  # EMFILE/ENFILE/ENOBUFS: keep the control socket alive
                log.warning("QMP accept failed: %s", e)
                await asyncio.sleep(ACCEPT_RETRY)
                continue
            sock.setblocking(False)
            self._next_client += 1
            client = Client(sock, self._next_client)
            self._clients.add(client)
            self._spawn(self._serve(client))

    async def _serve(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        writer = asyncio.ensure_future(self._write_loop(client))
        greeting = {
            "QMP": {
                "version": {"qemu": QEMU_VERSION, "package": PACKAGE},
                "capabilities": [],
            }
        }
        client.send(encode(greeting))
        splitter = JsonSplitter()
        try:
            while not client.closed:
                data = await loop.sock_recv(client.sock, 65536)
                if not data:
                    break
                for item in splitter.feed(data):
                    reply = await self._handle(client, item)
                    if reply is not None:
                        client.send(*reply)
                    if isinstance(item, FramingError):
                        return  # the stream is out of sync: answer, then hang up (finally)
        except (ConnectionError, OSError):
            pass
        finally:
            client.closed = True
            client.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(writer, 1.0)
            writer.cancel()
            self._clients.discard(client)
            client.sock.close()
            fb = self.control.framebuffer()
            if fb is not None:
                fb.damage.forget(client.number)  # its pending damage is of no use to anyone

    async def _write_loop(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await client.queue.get()
                if item is None:
                    return
                data, fd = item
                size = len(data)
                if fd >= 0:
                    sent = await send_with_fd(loop, client.sock, data, fd)
                    data = data[sent:]
                if data:
                    await loop.sock_sendall(client.sock, data)
                client.queued_bytes -= size
        except (ConnectionError, OSError):
            client.closed = True

    # ---- dispatch

    async def _handle(self, client: Client, item: bytes | QmpError) -> tuple[bytes, int] | None:
        if isinstance(item, QmpError):
            return encode(error_reply(item)), -1
        try:
            request = json.loads(item)
        except (ValueError, RecursionError) as e:
            return encode(error_reply(QmpError(f"JSON parse error, {e}"))), -1
        if not isinstance(request, dict):
            return encode(error_reply(QmpError("QMP input must be a JSON object"))), -1
        reply_id = {"id": request["id"]} if "id" in request else {}
        try:
            result, fd = await self._execute(client, request)
            reply = encode({"return": result, **reply_id})
        except QmpError as e:
            return encode({**error_reply(e), **reply_id}), -1
        except (ValueError, OSError) as e:
            return encode({**error_reply(QmpError(str(e))), **reply_id}), -1
        except Exception as e:  # a bug behind one command must not take the control socket down
            log.exception("QMP command %r failed", request.get("execute"))
            return encode({**error_reply(QmpError(f"internal error: {e}")), **reply_id}), -1
        return reply, fd

    async def _execute(self, client: Client, request: dict[str, Any]) -> tuple[Any, int]:
        for key in request:
            if key not in ("execute", "arguments", "id", "exec-oob"):
                raise QmpError(f"QMP input member '{key}' is unexpected")
        if "exec-oob" in request:
            raise QmpError(
                "QMP input member 'exec-oob' is unexpected: out-of-band is not supported"
            )
        if "execute" not in request:
            raise QmpError("QMP input lacks member 'execute'")
        name = request["execute"]
        if not isinstance(name, str):
            raise QmpError("QMP input member 'execute' must be a string")
        args = request.get("arguments", {})
        if not isinstance(args, dict):
            raise QmpError("QMP input member 'arguments' must be an object")
        if name == "qmp_capabilities":
            if client.negotiated:
                raise QmpError(
                    "Capabilities negotiation is already complete, command ignored",
                    "CommandNotFound",
                )
            no_extra(args, ("enable",))
            if args.get("enable"):
                raise QmpError("Capability 'oob' not available")
            client.negotiated = True
            return {}, -1
        if not client.negotiated:
            raise QmpError(
                "Expecting capabilities negotiation with 'qmp_capabilities'", "CommandNotFound"
            )
        handler = COMMANDS.get(name)
        if handler is None:
            raise QmpError(f"The command {name} has not been found", "CommandNotFound")
        ctx = CommandContext(
            self.control,
            client.number,
            self.emit,
            self.keyboard,  # type: ignore[arg-type]  # set by start() before any client
            lambda on: self._subscribe_damage(client, on),
        )
        result = handler(ctx, args)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, tuple):
            return result
        return result, -1

    # ---- damage pushed to subscribers

    def _subscribe_damage(self, client: Client, on: bool) -> None:
        fb = self.control.framebuffer()
        if on and not client.damage and fb is not None:
            fb.damage.forget(client.number)  # so the first event covers the whole screen
        client.damage = on
        if on and self._damage_task is None:
            self._damage_task = asyncio.ensure_future(self._damage_loop())
            self._tasks.add(self._damage_task)
            self._damage_task.add_done_callback(self._tasks.discard)

    async def _damage_loop(self) -> None:
        """Read the dirty log at DAMAGE_HZ while anyone subscribed; send only real changes.

        A client that has not read its previous messages yet is skipped this round: its damage
        accumulates in the Framebuffer's tracker and goes out as one event once it catches up.
        """
        loop = asyncio.get_running_loop()
        period = 1 / DAMAGE_HZ
        next_tick = loop.time()
        try:
            while True:
                subscribed = [c for c in self._clients if c.damage and not c.closed]
                if not subscribed:
                    return
                for client in subscribed:
                    if client.queued_bytes:
                        continue
                    rects = self.control.dirty(client.number)
                    if rects:
                        client.send(_event(DAMAGE_EVENT, {"rects": [r.as_dict() for r in rects]}))
                # Fixed ticks, not a fixed pause after each pass: the pass's own time would
                # otherwise come on top and hold the rate below DAMAGE_HZ. A late pass skips
                # the ticks it missed instead of bursting to catch up.
                next_tick = max(next_tick + period, loop.time())
                await asyncio.sleep(next_tick - loop.time())
        except Exception:  # keep the control socket alive; a new subscription restarts this
            log.exception("damage loop failed")
        finally:
            self._damage_task = None


def _event(event: str, data: dict[str, Any] | None) -> bytes:
    msg: dict[str, Any] = {"event": event}
    if data is not None:
        msg["data"] = data
    msg["timestamp"] = timestamp()
    return encode(msg)
