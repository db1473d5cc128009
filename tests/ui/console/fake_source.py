"""An in-memory FramebufferSource for widget tests that need no VMM."""

from __future__ import annotations

from vmgui.console.source import Rect, SourceListener


def checkerboard(x: int, y: int) -> int:
    """Neighbouring pixels differ in every channel: any resampling shows at once."""
    return 0xFF2010 if (x + y) % 2 else (x * 4 & 0xFF) << 8 | (y * 4 & 0xFF)


class FakeSource:
    def __init__(self, width: int = 64, height: int = 48, absolute: bool = False) -> None:
        self.width, self.height, self.stride = width, height, width * 4
        self.data = bytearray(self.stride * height)
        for y in range(height):
            for x in range(width):
                self.put(x, y, checkerboard(x, y))
        self.buffer: memoryview | None = memoryview(self.data)
        self.absolute_pointer = absolute
        self.can_resize = False
        self.listener: SourceListener | None = None
        self.keys: list[tuple[int, int, bool]] = []
        self.pointer: list[tuple[int, int, int]] = []

    def put(self, x: int, y: int, rgb: int) -> None:
        off = y * self.stride + x * 4
        self.data[off : off + 4] = rgb.to_bytes(4, "little")

    def damage(self, *rects: Rect) -> None:
        assert self.listener is not None
        self.listener.damaged(list(rects))

    def set_listener(self, listener: SourceListener | None) -> None:
        self.listener = listener

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.closed("")

    def send_key(self, scancode: int, keysym: int, down: bool) -> None:
        self.keys.append((scancode, keysym, down))

    def send_pointer(self, x: int, y: int, buttons: int) -> None:
        self.pointer.append((x, y, buttons))

    def request_size(self, width: int, height: int) -> None:
        pass
