"""What the RFB client needs from Qt: a JPEG decoder (Tight's JPEG rectangles) and a password
prompt. The client itself stays free of Qt; the console panel passes these to open_source()."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from vmgui.ui.tasks import accepted

#: A JPEG larger than this many pixels is refused before decoding (a rectangle is never bigger
#: than the largest screen the client accepts).
MAX_JPEG_PIXELS = 8192 * 8192


class JpegError(ValueError):
    """The server sent a JPEG Qt cannot decode (the client closes with one sentence)."""


def decode_jpeg(data: bytes) -> tuple[int, int, bytes]:
    """JPEG bytes -> (width, height, x8r8g8b8 rows of width*4 bytes), via Qt's decoder."""
    image = QImage.fromData(data, "JPG")  # type: ignore[arg-type]  # the binding takes str
    if image.isNull():
        raise JpegError("The VNC server sent a JPEG image that cannot be decoded.")
    if image.width() * image.height() > MAX_JPEG_PIXELS:
        raise JpegError("The VNC server sent an oversized JPEG image.")
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    if image.bytesPerLine() == w * 4:
        return w, h, bytes(image.constBits())[: w * h * 4]
    rows = bytes(image.constBits())
    stride = image.bytesPerLine()
    return w, h, b"".join(rows[y * stride : y * stride + w * 4] for y in range(h))


def password_prompt(parent: QWidget, vm_name: str) -> Callable[[], Awaitable[str | None]]:
    """An `AskPassword` for the RFB client: a window-modal dialog; None when cancelled."""

    async def ask() -> str | None:
        dialog = QInputDialog(parent)
        dialog.setWindowTitle("VNC password")
        dialog.setLabelText(f"The console of “{vm_name}” needs a password:")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        if not await accepted(dialog):
            return None
        return dialog.textValue()

    return ask
