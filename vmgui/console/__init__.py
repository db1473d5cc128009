"""Console sources without Qt: framebuffer-source protocol, shared-memory source, RFB client,
key mapping and the serial terminal model."""

from __future__ import annotations

from vmgui.console.source import ConsoleError, FramebufferSource
from vmgui.model.console import GraphicsEndpoint, SharedFramebufferEndpoint, VncEndpoint


def open_source(endpoint: GraphicsEndpoint) -> FramebufferSource:
    """The framebuffer source for an endpoint (not started: `await source.start()`).

    The RFB client is imported only when a VNC console is opened.
    """
    if isinstance(endpoint, SharedFramebufferEndpoint):
        from vmgui.console.shm_source import SharedFramebufferSource

        return SharedFramebufferSource(endpoint)
    if isinstance(endpoint, VncEndpoint):
        try:
            from vmgui.console.rfb import RfbSource  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ConsoleError("This version cannot show VNC consoles yet.") from None
        source: FramebufferSource = RfbSource(endpoint)
        return source
    raise ConsoleError(f"Unknown kind of console: {type(endpoint).__name__}.")


__all__ = ["ConsoleError", "FramebufferSource", "open_source"]
