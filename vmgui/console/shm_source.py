"""The built-in VMM's screen: its framebuffer memfd mapped read-only, damage pushed over QMP.

The VMM hands the memfd over `x-vmgui-framebuffer` as SCM_RIGHTS ancillary data. `qemu.qmp`
(our QMP client for everything else) reads its socket with plain `recv`, which drops ancillary
data, so the fd comes over a second, short-lived connection read with `recvmsg`. After that the
pixels are shared pages: nothing is copied per frame. Damage is pushed: after
`x-vmgui-damage-subscribe` the VMM sends `X_VMGUI_DAMAGE` events with rectangles, and none at
all while the screen is still, so a still console costs nothing here. (A VMM without that
command is asked with `x-vmgui-dirty` at the display rate instead.) Keys go back as
`input-send-event` key events with scancode numbers, batched per event-loop turn and sent in
order.

What the VMM sends is checked like anything from the other side of a socket: sizes, the format,
the fd's real length and every damage rectangle.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
import mmap
import os
import socket
from collections.abc import Sequence
from typing import Any

from qemu.qmp import ConnectError, EventListener, ExecuteError, QMPClient, QMPError

from vmgui.console.source import ConsoleError, Rect, SourceListener
from vmgui.model.console import SharedFramebufferEndpoint

log = logging.getLogger(__name__)

#: The VMM's damage event and the command that returns (and clears) this client's damage.
DAMAGE_EVENT = "X_VMGUI_DAMAGE"
SUBSCRIBE_COMMAND = "x-vmgui-damage-subscribe"
DIRTY_COMMAND = "x-vmgui-dirty"
FRAMEBUFFER_COMMAND = "x-vmgui-framebuffer"
#: Largest screen we accept from a VMM (matches the biggest 32-bit framebuffer window we map).
MAX_DIMENSION = 8192
MAX_FRAMEBUFFER_BYTES = 256 << 20
#: One reply line of `x-vmgui-framebuffer` is a small JSON object; more is a broken peer.
MAX_REPLY_BYTES = 64 << 10
#: More rectangles than this in one event are merged into their bounding box.
MAX_RECTS = 256
#: Polling period for a VMM that cannot push damage (one 60 Hz frame).
POLL_SECONDS = 1 / 60
CONNECT_TIMEOUT_S = 10.0
#: Key events per `input-send-event` command (the VMM refuses more than its queue holds).
MAX_KEYS_PER_COMMAND = 32


def receive_framebuffer(
    path: str, timeout: float = CONNECT_TIMEOUT_S
) -> tuple[dict[str, Any], int]:
    """Blocking (run it in a thread): `x-vmgui-framebuffer` on a fresh connection -> (info, fd).

    Raises ConsoleError with a sentence when the VMM refuses or answers something malformed.
    """
    fds: list[int] = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            reader = _LineReader(s)
            reader.line()  # greeting
            s.sendall(b'{"execute": "qmp_capabilities"}\n')
            reader.line()
            s.sendall(b'{"execute": "%s"}\n' % FRAMEBUFFER_COMMAND.encode())
            reply = reader.line(fds)
    except OSError as e:
        _close_all(fds)
        raise ConsoleError(f"Cannot reach the virtual machine's monitor: {e.strerror or e}.") from e
    try:
        message = json.loads(reply)
    except ValueError:
        _close_all(fds)
        raise ConsoleError("The virtual machine's monitor sent a garbled reply.") from None
    if not isinstance(message, dict) or "return" not in message:
        _close_all(fds)
        desc = message.get("error", {}).get("desc", "") if isinstance(message, dict) else ""
        raise ConsoleError(
            f"The virtual machine has no screen to show{': ' + desc if desc else ''}."
        )
    if len(fds) != 1:
        _close_all(fds)
        raise ConsoleError("The virtual machine's monitor did not pass its screen memory.")
    return message["return"], fds[0]


class _LineReader:
    """Reads newline-terminated QMP messages, collecting any SCM_RIGHTS fds that arrive."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self, fds: list[int] | None = None) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_REPLY_BYTES:
                raise ConsoleError("The virtual machine's monitor sent an oversized reply.")
            data, anc, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                    if fds is None:
                        _close_all(list(got))
                    else:
                        fds.extend(got)
            if not data:
                raise ConsoleError("The virtual machine's monitor closed the connection.")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class FramebufferFormat:
    """The checked geometry of a VMM framebuffer."""

    def __init__(self, info: Any) -> None:
        if not isinstance(info, dict):
            raise ConsoleError("The virtual machine described its screen in a garbled way.")
        try:
            width, height, stride, size = (
                int(info[k]) for k in ("width", "height", "stride", "size")
            )
        except (KeyError, TypeError, ValueError):
            raise ConsoleError(
                "The virtual machine described its screen in a garbled way."
            ) from None
        if info.get("format") != "x8r8g8b8":
            raise ConsoleError(
                f"The virtual machine's screen format {info.get('format')!r} is not supported."
            )
        if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
            raise ConsoleError(
                f"The virtual machine's screen size {width}x{height} is not supported."
            )
        if (
            stride < width * 4
            or stride % 4
            or not (stride * height <= size <= MAX_FRAMEBUFFER_BYTES)
        ):
            raise ConsoleError("The virtual machine described its screen memory inconsistently.")
        self.width, self.height, self.stride, self.size = width, height, stride, size


def clip_rects(raw: Any, width: int, height: int) -> list[Rect]:
    """Damage rectangles from the VMM, clipped to the screen; garbage entries are skipped."""
    if not isinstance(raw, list):
        return []
    rects: list[Rect] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        try:
            x, y, w, h = (int(item[k]) for k in ("x", "y", "width", "height"))
        except (KeyError, TypeError, ValueError):
            continue
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            rects.append(Rect(x0, y0, x1 - x0, y1 - y0))
    if len(rects) > MAX_RECTS:
        x0, y0 = min(r.x for r in rects), min(r.y for r in rects)
        x1, y1 = max(r.x + r.w for r in rects), max(r.y + r.h for r in rects)
        rects = [Rect(x0, y0, x1 - x0, y1 - y0)]
    return rects


class SharedFramebufferSource:
    """FramebufferSource over the built-in VMM's QMP socket and shared framebuffer memfd."""

    absolute_pointer = False  # the built-in VMM has no pointing device
    can_resize = False  # nor a way to change the guest's mode

    def __init__(self, endpoint: SharedFramebufferEndpoint) -> None:
        self.endpoint = endpoint
        self.width = self.height = self.stride = 0
        self.buffer: memoryview | None = None
        self.cursor = None  # the guest draws its own cursor into the framebuffer
        self._listener: SourceListener | None = None
        self._qmp: QMPClient | None = None
        self._map: mmap.mmap | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._keys: list[dict[str, Any]] = []
        self._key_task: asyncio.Task[None] | None = None
        self._closed = False
        self._told_listener = False

    def set_listener(self, listener: SourceListener | None) -> None:
        self._listener = listener

    async def start(self) -> None:
        path = self.endpoint.qmp_socket
        qmp = QMPClient("vmgui-console")
        try:
            await asyncio.wait_for(qmp.connect(path), CONNECT_TIMEOUT_S)
        except (ConnectError, OSError, TimeoutError) as e:
            raise ConsoleError(f"Cannot reach the virtual machine's monitor at {path}.") from e
        self._qmp = qmp
        try:
            info, fd = await asyncio.to_thread(receive_framebuffer, path)
            try:
                self._map_framebuffer(info, fd)
            finally:
                os.close(fd)
            events = EventListener((DAMAGE_EVENT, "SHUTDOWN"))
            qmp.register_listener(events)
            self._tasks = [
                asyncio.create_task(self._follow_events(events)),
                asyncio.create_task(self._watch_connection()),
            ]
            try:
                await qmp.execute(SUBSCRIBE_COMMAND)  # the first event covers the whole screen
            except ExecuteError:
                log.info("%s: no pushed damage from this VMM; polling", path)
                self._tasks.append(asyncio.create_task(self._poll_dirty()))
        except BaseException:
            await self.close()
            raise

    def _map_framebuffer(self, info: Any, fd: int) -> None:
        fmt = FramebufferFormat(info)
        if os.fstat(fd).st_size < fmt.size:
            # Touching pages past the end of a file kills the process with SIGBUS.
            raise ConsoleError("The virtual machine's screen memory is smaller than it says.")
        self._map = mmap.mmap(fd, fmt.size, mmap.MAP_SHARED, mmap.PROT_READ)
        self.width, self.height, self.stride = fmt.width, fmt.height, fmt.stride
        self.buffer = memoryview(self._map)[: fmt.stride * fmt.height]

    async def close(self) -> None:
        if self._closed:
            return
        self._tell_closed("")
        self._closed = True
        current = asyncio.current_task()
        for task in [*self._tasks, self._key_task]:
            if task is not None and task is not current:
                task.cancel()
        if self._qmp is not None:
            with contextlib.suppress(QMPError, OSError, EOFError, TimeoutError):
                await asyncio.wait_for(self._qmp.disconnect(), CONNECT_TIMEOUT_S)
        self._release_buffer()

    def _release_buffer(self) -> None:
        """Unmap the pixels; the listener was told (resized/closed) and dropped its image."""
        if self.buffer is not None:
            self.buffer.release()
            self.buffer = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                log.warning("framebuffer mapping still referenced; left to the garbage collector")
            self._map = None

    def _tell_closed(self, reason: str) -> None:
        """Once: the listener drops its image of the pixels before they are unmapped."""
        if not self._told_listener and self._listener is not None:
            self._told_listener = True
            self._listener.closed(reason)

    def _end(self, reason: str) -> None:
        """The VMM went away: tell the listener, then unmap."""
        if self._closed:
            return
        self._tell_closed(reason)
        self._tasks.append(asyncio.ensure_future(self.close()))

    def _damage(self, rects: list[Rect]) -> None:
        if rects and self._listener is not None and self.buffer is not None:
            self._listener.damaged(rects)

    async def _follow_events(self, events: EventListener) -> None:
        async for event in events:
            if event["event"] == "SHUTDOWN":
                self._end("The virtual machine stopped.")
                return
            data = event.get("data") or {}
            if isinstance(data, dict) and "rects" in data:
                self._damage(clip_rects(data["rects"], self.width, self.height))
            else:
                await self._take_dirty()

    async def _take_dirty(self) -> None:
        assert self._qmp is not None
        try:
            raw = await self._qmp.execute(DIRTY_COMMAND)
        except ExecuteError as e:
            log.warning("%s refused: %s", DIRTY_COMMAND, e)
            return
        self._damage(clip_rects(raw, self.width, self.height))

    async def _poll_dirty(self) -> None:
        """Only for a VMM that cannot push damage: ask once per frame."""
        try:
            while True:
                await self._take_dirty()
                await asyncio.sleep(POLL_SECONDS)
        except (QMPError, OSError, EOFError):
            log.debug("damage poll ended", exc_info=True)

    async def _watch_connection(self) -> None:
        assert self._qmp is not None
        from qemu.qmp.protocol import Runstate

        while self._qmp.runstate == Runstate.RUNNING:
            await self._qmp.runstate_changed()
        self._end("The connection to the virtual machine ended.")

    def send_key(self, scancode: int, keysym: int, down: bool) -> None:
        if self._closed:
            return
        key = {"type": "number", "data": scancode}
        self._keys.append({"type": "key", "data": {"down": down, "key": key}})
        if self._key_task is None or self._key_task.done():
            self._key_task = asyncio.create_task(self._flush_keys())

    async def _flush_keys(self) -> None:
        """Send queued key events in order; one command per batch so a burst costs one trip."""
        while self._keys and self._qmp is not None:
            batch, self._keys = self._keys[:MAX_KEYS_PER_COMMAND], self._keys[MAX_KEYS_PER_COMMAND:]
            try:
                await self._qmp.execute("input-send-event", {"events": batch})
            except ExecuteError as e:
                log.warning("keys not delivered: %s", e)
            except (QMPError, OSError, EOFError):
                log.debug("keys not delivered: the monitor is gone", exc_info=True)
                self._keys.clear()

    def send_pointer(self, x: int, y: int, buttons: int) -> None:
        """The built-in VMM has no pointing device: pointer input is ignored."""

    def request_size(self, width: int, height: int) -> None:
        """The built-in VMM's framebuffer mode is fixed at start-up."""
