"""Our asyncio RFB (VNC) client: wire format, decoders, authentication, the client state
machine and `RfbSource`, the `FramebufferSource` the console widget draws libvirt VMs from.
No Qt here: the ui layer injects what needs Qt (a JPEG decoder, a password dialog)."""

from vmgui.console.rfb.client import AuthenticationFailed, PasswordRequired, parse_encodings
from vmgui.console.rfb.source import RfbSource

__all__ = ["AuthenticationFailed", "PasswordRequired", "RfbSource", "parse_encodings"]
