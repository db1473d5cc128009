"""Console sources without Qt: framebuffer-source protocol, shared-memory source, RFB client,
key mapping and the serial terminal model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmgui.console.source import ConsoleError, FramebufferSource
from vmgui.model.console import GraphicsEndpoint, SharedFramebufferEndpoint, VncEndpoint

if TYPE_CHECKING:
    from vmgui.console.rfb.client import AskPassword
    from vmgui.console.rfb.decoders import JpegDecoder


def open_source(
    endpoint: GraphicsEndpoint,
    *,
    ask_password: AskPassword | None = None,
    jpeg_decoder: JpegDecoder | None = None,
) -> FramebufferSource:
    """The framebuffer source for an endpoint (not started yet: `await source.start()`).

    `ask_password` and `jpeg_decoder` serve VNC consoles (the ui layer supplies what needs Qt);
    the RFB client is imported only when a VNC console is opened.
    """
    if isinstance(endpoint, SharedFramebufferEndpoint):
        from vmgui.console.shm_source import SharedFramebufferSource

        return SharedFramebufferSource(endpoint)
    if isinstance(endpoint, VncEndpoint):
        from vmgui.console.rfb import RfbSource

        return RfbSource(endpoint, ask_password=ask_password, jpeg_decoder=jpeg_decoder)
    raise ConsoleError(f"Unknown kind of console: {type(endpoint).__name__}.")


__all__ = ["ConsoleError", "FramebufferSource", "open_source"]
