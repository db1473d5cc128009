"""One QMP connection to one VM's `vmgui-vmm`, through the maintained `qemu.qmp` client.

The session forwards the VMM's asynchronous events (SHUTDOWN, STOP, RESUME, RESET, ...) to a
callback and calls `on_closed` once when the connection ends for any reason other than our own
`close()`: the VMM exited, was killed, or dropped us. The backend decides what that means by
looking at the process. Command failures become BackendError sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from qemu.qmp import ConnectError, EventListener, ExecuteError, QMPClient, QMPError, Runstate

from vmgui.backends.base import BackendError

log = logging.getLogger(__name__)

EventCallback = Callable[[str, dict[str, Any]], None]
#: How long one command may take before the VMM counts as not answering.
COMMAND_TIMEOUT_S = 10.0
CONNECT_RETRY_S = 0.05


class VmmSession:
    def __init__(self, name: str, socket_path: str, on_event: EventCallback,
                 on_closed: Callable[[], None]) -> None:
        self.name = name
        self.socket_path = socket_path
        self._on_event = on_event
        self._on_closed = on_closed
        self._client = QMPClient(f"vmgui:{name}")
        self._listener = EventListener()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def connect(self, timeout: float, alive: Callable[[], bool]) -> None:
        """Connect once the VMM's socket answers; BackendError when it never does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if os.path.exists(self.socket_path):
                try:
                    await self._client.connect(self.socket_path)
                    break
                except (ConnectError, OSError) as exc:
                    error: BaseException = exc
            else:
                error = FileNotFoundError(self.socket_path)
            if not alive():
                raise BackendError("The built-in VMM ended before it could be controlled.")
            if loop.time() > deadline:
                log.info("QMP connect to %s failed: %s", self.socket_path, error)
                raise BackendError(
                    f"The built-in VMM of “{self.name}” does not answer on its control socket."
                )
            await asyncio.sleep(CONNECT_RETRY_S)
        self._client.register_listener(self._listener)
        self._tasks = [
            asyncio.ensure_future(self._pump_events()),
            asyncio.ensure_future(self._watch()),
        ]

    async def _pump_events(self) -> None:
        async for event in self._listener:
            data = event.get("data")
            self._on_event(str(event["event"]), dict(data) if isinstance(data, dict) else {})

    async def _watch(self) -> None:
        while self._client.runstate == Runstate.RUNNING:
            await self._client.runstate_changed()
        if not self._closing:
            self._on_closed()

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        try:
            return await asyncio.wait_for(
                self._client.execute(command, arguments), COMMAND_TIMEOUT_S
            )
        except ExecuteError as exc:
            raise BackendError(f"The built-in VMM refused {command}: {exc.error.error.desc}") from None
        except TimeoutError:
            raise BackendError(f"The built-in VMM of “{self.name}” is not answering.") from None
        except (QMPError, OSError, EOFError) as exc:
            log.info("QMP %s on %s failed: %r", command, self.name, exc)
            raise BackendError(
                f"The built-in VMM of “{self.name}” closed its control connection."
            ) from None

    async def close(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await self._client.disconnect()
        with contextlib.suppress(Exception):
            self._client.remove_listener(self._listener)
        await asyncio.gather(*self._tasks, return_exceptions=True)
