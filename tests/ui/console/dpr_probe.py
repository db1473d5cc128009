"""Run in a fresh process with QT_SCALE_FACTOR set: show a ConsoleView at 1:1 and print how many
guest pixels differ from the device pixels on screen (0: sharp), then the device pixel ratio."""

from __future__ import annotations

import sys

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from tests.ui.console.fake_source import FakeSource, checkerboard
from vmgui.ui.console.view import ConsoleView, Scale


def main() -> None:
    app = QApplication(sys.argv[:1])
    source = FakeSource(64, 48)
    view = ConsoleView()
    view.attach(source)  # type: ignore[arg-type]
    view.set_scale(Scale.ONE_TO_ONE)
    view.resize(101, 77)  # odd sizes: centring must still land on whole device pixels
    view.show()
    app.processEvents()
    x0, y0, k = view._placement()
    shot = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    bad = sum(
        shot.pixel(int(x0) + x, int(y0) + y) & 0xFFFFFF != checkerboard(x, y)
        for y in range(source.height)
        for x in range(source.width)
    )
    print(bad, view.devicePixelRatioF(), shot.width(), k)


if __name__ == "__main__":
    main()
