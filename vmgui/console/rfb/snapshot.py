"""One frame from any VNC server, for `vmgui vnc-screenshot` (scripts, and checking our client
against servers other than QEMU's). No Qt: the PNG comes from the VMM's zlib-only writer."""

from __future__ import annotations

import re

from vmgui.console.rfb.source import RfbSource
from vmgui.console.source import ConsoleError
from vmgui.model.console import VncEndpoint
from vmgui.vmm.screendump import write_screendump

VNC_BASE_PORT = 5900

_HOST_DISPLAY = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:]*))(?P<sep>::?)(?P<num>\d+)$")


def parse_address(text: str) -> VncEndpoint:
    """`unix:PATH`, `HOST::PORT`, `HOST:DISPLAY` (port 5900 + DISPLAY) or `HOST` (display 0).

    ValueError with a sentence when it is none of those.
    """
    if text.startswith("unix:"):
        if not text[5:]:
            raise ValueError("The address unix: needs a socket path.")
        return VncEndpoint(path=text[5:], local=True)
    m = _HOST_DISPLAY.match(text)
    if m is None:
        if text and ":" not in text:
            return VncEndpoint(host=text, port=VNC_BASE_PORT)
        raise ValueError(
            f"{text!r} is not a VNC address (HOST:DISPLAY, HOST::PORT or unix:PATH)."
        )
    host = m["v6"] or m["host"] or "127.0.0.1"
    number = int(m["num"])
    port = number if m["sep"] == "::" else VNC_BASE_PORT + number
    if not 0 < port < 65536:
        raise ValueError(f"{text!r} names port {port}, which does not exist.")
    return VncEndpoint(host=host, port=port, local=host in ("127.0.0.1", "::1", "localhost"))


async def save_screenshot(
    endpoint: VncEndpoint, path: str, encodings: list[int] | None = None
) -> tuple[int, int]:
    """Connect, wait for the first complete frame, write it to `path` as PNG; (width, height).

    Raises ConsoleError (one sentence) when the server cannot be reached or read, OSError
    when the file cannot be written.
    """
    source = RfbSource(endpoint, encodings=encodings)
    await source.start()
    try:
        buffer = source.buffer
        if buffer is None:
            raise ConsoleError("The VNC server sent no picture.")
        width, height, stride = source.width, source.height, source.stride
        write_screendump(path, "png", bytes(buffer), width, height, stride)
        return width, height
    finally:
        await source.close()
