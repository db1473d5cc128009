"""Qt key events -> physical keys for a graphical console, and -> bytes for a serial terminal.

On X11 and Wayland `nativeScanCode()` is the XKB keycode (evdev + 8): the key's position, so
the guest's own layout decides what it types. Platforms without native scancodes (offscreen,
some remote desktops) fall back to the Qt key, read as a key of a US keyboard.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeyEvent

from vmgui.console.keymap import (
    XKB_EVDEV_OFFSET,
    KeymapError,
    keysym_for,
    qcode_for_evdev,
    scancode_for_qcode,
)

K = Qt.Key
#: Platforms whose nativeScanCode() is an XKB keycode.
XKB_PLATFORMS = ("xcb", "wayland")

_QT_KEY_QCODES: dict[Qt.Key, str] = {
    K.Key_Escape: "esc", K.Key_Tab: "tab", K.Key_Backtab: "tab", K.Key_Backspace: "backspace",
    K.Key_Return: "ret", K.Key_Enter: "kp_enter", K.Key_Insert: "insert", K.Key_Delete: "delete",
    K.Key_Pause: "pause", K.Key_Print: "print", K.Key_SysReq: "print", K.Key_Home: "home",
    K.Key_End: "end", K.Key_Left: "left", K.Key_Up: "up", K.Key_Right: "right",
    K.Key_Down: "down", K.Key_PageUp: "pgup", K.Key_PageDown: "pgdn", K.Key_Shift: "shift",
    K.Key_Control: "ctrl", K.Key_Meta: "meta_l", K.Key_Alt: "alt", K.Key_AltGr: "alt_r",
    K.Key_CapsLock: "caps_lock", K.Key_NumLock: "num_lock", K.Key_ScrollLock: "scroll_lock",
    K.Key_Menu: "menu", K.Key_Space: "spc", K.Key_Minus: "minus", K.Key_Underscore: "minus",
    K.Key_Equal: "equal", K.Key_Plus: "equal", K.Key_BracketLeft: "bracket_left",
    K.Key_BraceLeft: "bracket_left", K.Key_BracketRight: "bracket_right",
    K.Key_BraceRight: "bracket_right", K.Key_Semicolon: "semicolon", K.Key_Colon: "semicolon",
    K.Key_Apostrophe: "apostrophe", K.Key_QuoteDbl: "apostrophe",
    K.Key_QuoteLeft: "grave_accent", K.Key_AsciiTilde: "grave_accent",
    K.Key_Backslash: "backslash", K.Key_Bar: "backslash", K.Key_Comma: "comma",
    K.Key_Less: "comma", K.Key_Period: "dot", K.Key_Greater: "dot", K.Key_Slash: "slash",
    K.Key_Question: "slash", K.Key_Exclam: "1", K.Key_At: "2", K.Key_NumberSign: "3",
    K.Key_Dollar: "4", K.Key_Percent: "5", K.Key_AsciiCircum: "6", K.Key_Ampersand: "7",
    K.Key_Asterisk: "8", K.Key_ParenLeft: "9", K.Key_ParenRight: "0",
    **{getattr(K, f"Key_{c}"): c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"},
    **{getattr(K, f"Key_F{n}"): f"f{n}" for n in range(1, 25)},
}  # fmt: skip


@dataclass(frozen=True)
class PhysicalKey:
    qcode: str
    scancode: int  # QEMU number form
    keysym: int


def _uses_native_scancodes() -> bool:
    return QGuiApplication.platformName() in XKB_PLATFORMS


def physical_key(event: QKeyEvent) -> PhysicalKey | None:
    """The key the event's physical key is, or None for keys a PC keyboard lacks."""
    qcode: str | None = None
    native = event.nativeScanCode()
    if native > XKB_EVDEV_OFFSET and _uses_native_scancodes():
        qcode = qcode_for_evdev(native - XKB_EVDEV_OFFSET)
    if qcode is None:
        key = Qt.Key(event.key())
        if event.modifiers() & Qt.KeyboardModifier.KeypadModifier:
            qcode = _KEYPAD_QCODES.get(key)
        qcode = qcode or _QT_KEY_QCODES.get(key)
    if qcode is None:
        return None
    try:
        scancode = scancode_for_qcode(qcode)
    except KeymapError:
        return None
    return PhysicalKey(qcode, scancode, keysym_for(qcode, event.text()))


_KEYPAD_QCODES: dict[Qt.Key, str] = {
    **{getattr(K, f"Key_{d}"): f"kp_{d}" for d in range(10)},
    K.Key_Period: "kp_decimal", K.Key_Comma: "kp_comma", K.Key_Slash: "kp_divide",
    K.Key_Asterisk: "kp_multiply", K.Key_Minus: "kp_subtract", K.Key_Plus: "kp_add",
    K.Key_Enter: "kp_enter", K.Key_Equal: "kp_equals",
}  # fmt: skip


def key_for_qcode(qcode: str) -> PhysicalKey:
    """A key by QEMU name, for the Send Key menu."""
    return PhysicalKey(qcode, scancode_for_qcode(qcode), keysym_for(qcode))


# ---- serial terminals ------------------------------------------------------------------------

_TERMINAL_KEYS: dict[Qt.Key, bytes] = {
    K.Key_Return: b"\r", K.Key_Enter: b"\r", K.Key_Backspace: b"\x7f", K.Key_Tab: b"\t",
    K.Key_Backtab: b"\x1b[Z", K.Key_Escape: b"\x1b", K.Key_Home: b"\x1b[H", K.Key_End: b"\x1b[F",
    K.Key_Insert: b"\x1b[2~", K.Key_Delete: b"\x1b[3~", K.Key_PageUp: b"\x1b[5~",
    K.Key_PageDown: b"\x1b[6~", K.Key_F1: b"\x1bOP", K.Key_F2: b"\x1bOQ", K.Key_F3: b"\x1bOR",
    K.Key_F4: b"\x1bOS", K.Key_F5: b"\x1b[15~", K.Key_F6: b"\x1b[17~", K.Key_F7: b"\x1b[18~",
    K.Key_F8: b"\x1b[19~", K.Key_F9: b"\x1b[20~", K.Key_F10: b"\x1b[21~",
    K.Key_F11: b"\x1b[23~", K.Key_F12: b"\x1b[24~",
}  # fmt: skip
_ARROWS = {K.Key_Up: b"A", K.Key_Down: b"B", K.Key_Right: b"C", K.Key_Left: b"D"}


def terminal_bytes(event: QKeyEvent, application_cursor: bool = False) -> bytes:
    """What a VT100-style terminal sends for this key press (b"" for none)."""
    key = Qt.Key(event.key())
    mods = event.modifiers()
    if key in _ARROWS:
        return (b"\x1bO" if application_cursor else b"\x1b[") + _ARROWS[key]
    if key in _TERMINAL_KEYS:
        return _TERMINAL_KEYS[key]
    ctrl = mods & (
        Qt.KeyboardModifier.MetaModifier  # macOS swaps Control and Meta
        if QGuiApplication.platformName() == "cocoa"
        else Qt.KeyboardModifier.ControlModifier
    )
    if ctrl and K.Key_A <= key <= K.Key_Z:
        return bytes([key - K.Key_A + 1])
    if ctrl and key in (K.Key_BracketLeft, K.Key_Backslash, K.Key_BracketRight):
        return bytes([0x1B + (key - K.Key_BracketLeft)])
    if ctrl and key == K.Key_Space:
        return b"\x00"
    data = event.text().encode("utf-8", errors="ignore")
    if mods & Qt.KeyboardModifier.AltModifier and data:
        return b"\x1b" + data
    return data
