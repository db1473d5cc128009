"""The Qt pieces the RFB client gets from the ui: the JPEG decoder."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QColor, QImage

from vmgui.ui.console.rfb_hooks import JpegError, decode_jpeg


def jpeg_of(width: int, height: int, colour: QColor) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(colour)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buf, "JPG", 95)  # type: ignore[call-overload]
    return bytes(data.data())


def test_decode_jpeg_gives_x8r8g8b8_rows(qapp: Any) -> None:
    w, h, pixels = decode_jpeg(jpeg_of(13, 7, QColor(200, 40, 10)))  # odd width: no padding
    assert (w, h, len(pixels)) == (13, 7, 13 * 7 * 4)
    b, g, r = pixels[0], pixels[1], pixels[2]
    assert abs(r - 200) < 8 and abs(g - 40) < 8 and abs(b - 10) < 8


def test_garbage_is_a_jpeg_error(qapp: Any) -> None:
    with pytest.raises(JpegError):
        decode_jpeg(b"\xff\xd8 not really a jpeg")
