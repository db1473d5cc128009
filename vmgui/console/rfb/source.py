"""`RfbSource`: a VNC server as a `FramebufferSource` (the console widget's view of libvirt VMs).

`start()` connects (fd, unix socket, TCP or ssh tunnel), does the RFB handshake and returns
once the first complete frame is in the buffer. From then on a task runs the client; whatever
ends it (the server hangs up, breaks the protocol, a bug) reaches the listener as exactly one
`closed(sentence)` and never escapes into the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from vmgui.console.rfb.client import AskPassword, RfbClient, default_encodings
from vmgui.console.rfb.decoders import JpegDecoder
from vmgui.console.rfb.transport import Connection, open_connection
from vmgui.console.rfb.wire import ProtocolError
from vmgui.console.source import ConsoleError, CursorImage, Rect, SourceListener
from vmgui.model.console import VncEndpoint

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 30.0  # not counting the time someone takes to type a password
FIRST_FRAME_TIMEOUT_S = 30.0
UNEXPECTED = "The VNC connection failed unexpectedly (details are in the log)."


class RfbSource:
    def __init__(
        self,
        endpoint: VncEndpoint,
        *,
        encodings: list[int] | None = None,
        ask_password: AskPassword | None = None,
        jpeg_decoder: JpegDecoder | None = None,
        jpeg_quality: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._encodings = encodings or default_encodings(endpoint.local)
        self._ask_password = ask_password
        self._jpeg_decoder = jpeg_decoder
        self._jpeg_quality = jpeg_quality
        self._listener: SourceListener | None = None
        self._conn: Connection | None = None
        self.client: RfbClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._buffer: memoryview | None = None
        self._ended = False
        self._asking = False  # the password prompt is open
        self._asked_until = 0.0  # when it closed
        self._started = False  # first frame shown: failures now go to the listener
        self.close_reason: str | None = None

    # --- FramebufferSource -------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self.client.width if self.client else 0

    @property
    def height(self) -> int:
        return self.client.height if self.client else 0

    @property
    def stride(self) -> int:
        return self.width * 4

    @property
    def buffer(self) -> memoryview | None:
        return self._buffer

    @property
    def absolute_pointer(self) -> bool:
        return bool(self.client and self.client.absolute_pointer)

    @property
    def can_resize(self) -> bool:
        return bool(self.client and self.client.can_resize)

    @property
    def cursor(self) -> CursorImage | None:
        return self.client.cursor if self.client else None

    @property
    def leds(self) -> int | None:
        return self.client.leds if self.client else None

    @property
    def resize_problem(self) -> str:
        return self.client.resize_problem if self.client else ""

    def set_listener(self, listener: SourceListener | None) -> None:
        self._listener = listener

    async def start(self) -> None:
        if self.client is not None:
            raise ConsoleError("This console is already open.")
        conn = self._conn = await open_connection(self.endpoint)
        client = self.client = RfbClient(
            conn.reader,
            conn.writer,
            self,
            encodings=self._encodings,
            password=self.endpoint.password,
            ask_password=self._ask if self._ask_password is not None else None,
            jpeg_decoder=self._jpeg_decoder,
            jpeg_quality=self._jpeg_quality,
        )
        try:
            await self._handshake(client)
            self._buffer = memoryview(client.fb)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rfb-client")
            first = asyncio.ensure_future(client.first_frame.wait())
            done, _ = await asyncio.wait(
                {first, self._task}, timeout=FIRST_FRAME_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
            first.cancel()
            if not client.first_frame.is_set():
                if self.close_reason is not None:
                    raise ConsoleError(self.close_reason)
                raise ConsoleError("The VNC server sent no picture in time.")
            self._started = True
        except BaseException as exc:
            sentence = await self._failure_sentence(exc)
            self._ended = True
            await self._shutdown()
            if isinstance(exc, ConsoleError) and str(exc) == sentence:
                raise
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ConsoleError(sentence) from None

    async def _handshake(self, client: RfbClient) -> None:
        """The handshake with a time limit that does not count a person typing the password."""
        task = asyncio.ensure_future(client.handshake())
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
                if done:
                    return task.result()
                # the limit restarts while the prompt is open and when it closes
                resumed = time.monotonic() if self._asking else self._asked_until
                if resumed + HANDSHAKE_TIMEOUT_S > deadline:
                    deadline = resumed + HANDSHAKE_TIMEOUT_S
                    continue
                raise TimeoutError
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _ask(self) -> str | None:
        assert self._ask_password is not None
        self._asking = True
        try:
            return await self._ask_password()
        finally:
            self._asking = False
            self._asked_until = time.monotonic()

    async def _failure_sentence(self, exc: BaseException) -> str:
        if isinstance(exc, asyncio.TimeoutError):
            return "The VNC server did not answer in time."
        if isinstance(exc, ProtocolError | ConsoleError):
            if self._conn is not None:
                ssh_said = await self._conn.ssh_failure()
                if ssh_said:
                    return f"The ssh tunnel to the VNC server failed: {ssh_said}."
            return str(exc)
        if not isinstance(exc, asyncio.CancelledError):
            log.error("VNC start-up failed", exc_info=exc)
        return UNEXPECTED

    async def _run(self) -> None:
        assert self.client is not None
        try:
            await self.client.run()
        except asyncio.CancelledError:
            raise
        except (ProtocolError, ConsoleError) as exc:
            reason = str(exc)
            if self._conn is not None:
                ssh_said = await self._conn.ssh_failure()
                if ssh_said:
                    reason = f"The ssh tunnel to the VNC server failed: {ssh_said}."
            self._end(reason)
        except Exception:
            log.exception("VNC client failed")
            self._end(UNEXPECTED)
        if self._conn is not None:
            await self._conn.close()

    def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.close_reason = reason
        if self._started:
            self._notify("closed", reason)

    async def close(self) -> None:
        was_running = not self._ended
        self._ended = True
        await self._shutdown()
        if was_running and self.client is not None:
            self.close_reason = ""
            self._notify("closed", "")

    async def _shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None:
            await self._conn.close()

    def send_key(self, scancode: int, keysym: int, down: bool) -> None:
        if self.client is not None and not self._ended:
            self.client.send_key(scancode, keysym, down)

    def send_pointer(self, x: int, y: int, buttons: int) -> None:
        if self.client is not None and not self._ended:
            self.client.send_pointer(x, y, buttons)

    def request_size(self, width: int, height: int) -> None:
        if self.client is not None and not self._ended:
            self.client.request_size(width, height)

    # --- ClientHandler -----------------------------------------------------------------------

    def on_resize(self) -> None:
        assert self.client is not None
        self._buffer = memoryview(self.client.fb)
        self._notify("resized", self.client.width, self.client.height)

    def on_damage(self, rects: list[Rect]) -> None:
        self._notify("damaged", rects)

    def on_state(self) -> None:
        self._notify("state_changed")

    def _notify(self, method: str, *args: object) -> None:
        listener = self._listener
        fn = getattr(listener, method, None) if listener is not None else None
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:  # a widget bug must not end the connection
            log.exception("console listener %s() failed", method)
