"""Run in a fresh process with QT_SCALE_FACTOR set: show a ConsoleView at 1:1 and print how many
guest pixels differ from the device pixels on screen (0: sharp), the device pixel ratio, the
grabbed width and the placement scale.

    python -m tests.ui.console.dpr_probe             # an in-memory checkerboard
    python -m tests.ui.console.dpr_probe QMP_SOCKET  # a running fb_pattern guest (its pixels)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from tests.ui.console.fake_source import FakeSource, checkerboard
from tests.vmm.test_qmp_machine import fb_pixel
from vmgui.console.shm_source import SharedFramebufferSource
from vmgui.console.source import FramebufferSource
from vmgui.model.console import SharedFramebufferEndpoint
from vmgui.ui.console.view import ConsoleView, Scale


def vmm_source(sock: str) -> FramebufferSource:
    """The guest's framebuffer, mapped; its QMP tasks end with this short loop (no damage
    needed: the guest has drawn and waits)."""
    source = SharedFramebufferSource(SharedFramebufferEndpoint(sock))
    asyncio.run(source.start())
    return source


def main() -> None:
    app = QApplication(sys.argv[:1])
    source: FramebufferSource
    expected: Callable[[int, int], int]
    if len(sys.argv) > 1:
        source, expected = vmm_source(sys.argv[1]), fb_pixel
    else:
        source, expected = FakeSource(64, 48), checkerboard  # type: ignore[assignment]
    view = ConsoleView()
    view.attach(source)
    view.set_scale(Scale.ONE_TO_ONE)
    hint = view.sizeHint()  # the guest at 1:1, plus odd margins: centring must still land
    view.resize(hint.width() + 7, hint.height() + 5)  # on whole device pixels
    view.show()
    app.processEvents()
    x0, y0, k = view._placement()
    shot = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    w = min(source.width, shot.width() - int(x0))
    h = min(source.height, shot.height() - int(y0))
    bad = sum(
        shot.pixel(int(x0) + x, int(y0) + y) & 0xFFFFFF != expected(x, y)
        for y in range(h)
        for x in range(w)
    )
    print(bad, view.devicePixelRatioF(), shot.width(), k, w * h)


if __name__ == "__main__":
    main()
