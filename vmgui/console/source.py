"""The framebuffer-source protocol: what a console widget draws from, whatever the backend.

A source owns a 32-bit x8r8g8b8 pixel buffer (little-endian bytes B, G, R, X: the layout of
`QImage.Format_RGB32`, so the widget wraps it without a copy) and tells its listener about
damage and size changes. Listener callbacks run on the event-loop thread; the widget repaints
only the damaged rectangles. Input goes back as physical keys (XT scancodes in QEMU's
numbering: E0-prefixed keys are 0x80 | code) plus the keysym, and absolute pointer positions in
framebuffer pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


class SourceListener(Protocol):
    def damaged(self, rects: list[Rect]) -> None:
        """Pixels inside `rects` changed (already clipped to the current size)."""

    def resized(self, width: int, height: int) -> None:
        """The buffer was replaced: re-read `buffer`, `width`, `height`, `stride`."""

    def closed(self, reason: str) -> None:
        """The source ended; `reason` is one sentence ("" for a normal close)."""

    # Optional, called only when the listener defines it:
    #   state_changed() -> None: re-read the source's optional `cursor`, `leds`,
    #   `resize_problem`, `absolute_pointer` and `can_resize` (see `SourceExtras`).


@dataclass(frozen=True)
class CursorImage:
    """The guest's pointer shape for the widget to draw locally; 0x0 means hidden."""

    width: int
    height: int
    hot_x: int
    hot_y: int
    argb: bytes  # QImage.Format_ARGB32 rows of width*4 bytes


class SourceExtras(Protocol):
    """Optional members of a source (read them with `getattr(source, name, default)`)."""

    #: The pointer shape the guest wants drawn at the local pointer; None: draw the guest's own.
    cursor: CursorImage | None
    #: Keyboard LEDs (bit 0 Scroll, 1 Num, 2 Caps Lock), None when the guest does not say.
    leds: int | None
    #: Why the last `request_size` was refused (one sentence), "" when it was not.
    resize_problem: str


class FramebufferSource(Protocol):
    """Pixels plus input back to the guest; `start` connects, `close` is idempotent."""

    # Read-only for consumers: a source may keep them as attributes or compute them.
    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def stride(self) -> int: ...

    @property
    def buffer(self) -> memoryview | None:
        """The pixels; valid until the next `resized` callback or `close`."""

    @property
    def absolute_pointer(self) -> bool:
        """True when the guest takes absolute pointer positions (tablet), False otherwise."""

    @property
    def can_resize(self) -> bool:
        """True when `request_size` can ask the guest to change resolution."""

    def set_listener(self, listener: SourceListener | None) -> None: ...

    async def start(self) -> None:
        """Connect and fetch the first frame; raises ConsoleError with a sentence on failure."""

    async def close(self) -> None: ...

    def send_key(self, scancode: int, keysym: int, down: bool) -> None: ...

    def send_pointer(self, x: int, y: int, buttons: int) -> None:
        """`buttons`: bit 0 left, 1 middle, 2 right, 3/4 wheel up/down (RFB's mask)."""

    def request_size(self, width: int, height: int) -> None: ...


class ConsoleError(Exception):
    """A console could not be opened or ended abnormally; the message is one sentence."""
