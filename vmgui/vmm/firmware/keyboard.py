"""Keyboard input while the firmware runs: keys become VT100 bytes on the serial console.

Debian's SeaBIOS for microvm has no PS/2 driver; it reads the keyboard from its serial console
(`etc/sercon-port`), which understands plain characters and the VT100/xterm sequences below.
GRUB and other boot loaders read keys through the BIOS (int 16h), so they get them the same way.
Once the OS's i8042 driver has taken the keyboard (it wrote the command byte with the keyboard
interrupt on) keys go to the i8042 as scancodes instead.

`Set2Decoder` turns the machine's set-2 key bytes back into key presses, tracking Shift, Ctrl
and Alt, so this module needs no second key path from QMP or the console.
"""

from __future__ import annotations

from vmgui.vmm.keymap import SCANCODES
from vmgui.vmm.record import TYPE_CHECKING

if TYPE_CHECKING:
    from vmgui.vmm.devices.i8042 import I8042
    from vmgui.vmm.devices.serial import Serial

#: Keys with a fixed sequence (xterm's, as SeaBIOS's sercon decodes them).
SEQUENCES: dict[str, bytes] = {
    "ret": b"\r", "kp_enter": b"\r", "esc": b"\x1b", "tab": b"\t", "backspace": b"\x7f",
    "spc": b" ", "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D",
    "home": b"\x1b[H", "end": b"\x1b[F", "insert": b"\x1b[2~", "delete": b"\x1b[3~",
    "pgup": b"\x1b[5~", "pgdn": b"\x1b[6~",
    "f1": b"\x1bOP", "f2": b"\x1bOQ", "f3": b"\x1bOR", "f4": b"\x1bOS", "f5": b"\x1b[15~",
    "f6": b"\x1b[17~", "f7": b"\x1b[18~", "f8": b"\x1b[19~", "f9": b"\x1b[20~",
    "f10": b"\x1b[21~", "f11": b"\x1b[23~", "f12": b"\x1b[24~",
}  # fmt: skip

#: US layout: key -> (plain, shifted) character.
_PRINTABLE: dict[str, tuple[str, str]] = {
    **{c: (c, c.upper()) for c in "abcdefghijklmnopqrstuvwxyz"},
    "1": ("1", "!"), "2": ("2", "@"), "3": ("3", "#"), "4": ("4", "$"), "5": ("5", "%"),
    "6": ("6", "^"), "7": ("7", "&"), "8": ("8", "*"), "9": ("9", "("), "0": ("0", ")"),
    "minus": ("-", "_"), "equal": ("=", "+"), "bracket_left": ("[", "{"),
    "bracket_right": ("]", "}"), "semicolon": (";", ":"), "apostrophe": ("'", '"'),
    "grave_accent": ("`", "~"), "backslash": ("\\", "|"), "comma": (",", "<"),
    "dot": (".", ">"), "slash": ("/", "?"), "less": ("\\", "|"),
    "kp_divide": ("/", "/"), "kp_multiply": ("*", "*"), "kp_subtract": ("-", "-"),
    "kp_add": ("+", "+"), "kp_decimal": (".", "."),
    **{f"kp_{d}": (str(d), str(d)) for d in range(10)},
}  # fmt: skip

_SHIFT = frozenset({"shift", "shift_r"})
_CTRL = frozenset({"ctrl", "ctrl_r"})
_ALT = frozenset({"alt", "alt_r"})

#: set-2 code (0xE0xx = E0-prefixed) -> key name; the first name wins for shared codes.
SET2_TO_KEY: dict[int, str] = {}
for _name, (_set1, _set2) in SCANCODES.items():
    if _set2:
        SET2_TO_KEY.setdefault(_set2, _name)


def vt100_bytes(key: str, shift: bool, ctrl: bool, alt: bool) -> bytes:
    """What a terminal sends for one key press; b"" for keys it has nothing for."""
    if key in SEQUENCES:
        return SEQUENCES[key]
    chars = _PRINTABLE.get(key)
    if chars is None:
        return b""
    ch = chars[1] if shift else chars[0]
    if ctrl and ch.isalpha():
        out = bytes([ord(ch.lower()) - ord("a") + 1])
    elif ctrl and ch in "[\\]":
        out = bytes([ord(ch) - 0x40])
    else:
        out = ch.encode()
    return b"\x1b" + out if alt else out


class Set2Decoder:
    """Parses a stream of set-2 bytes into key events; keeps modifier state across calls."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self._prefix = 0
        self._release = False
        self._skip = 0

    def feed(self, data: bytes) -> bytes:
        """VT100 bytes for the key presses in `data` (releases only update modifiers)."""
        out = bytearray()
        for b in data:
            if self._skip:  # rest of Pause's E1 sequence
                self._skip -= 1
                continue
            if b == 0xE1:
                self._skip = 7
                continue
            if b == 0xE0:
                self._prefix = 0xE000
                continue
            if b == 0xF0:
                self._release = True
                continue
            code, release = self._prefix | b, self._release
            self._prefix, self._release = 0, False
            key = SET2_TO_KEY.get(code)
            if key is None or code == 0xE012:  # E0 12: Print Screen's fake shift
                continue
            if release:
                self.held.discard(key)
                continue
            if key in _SHIFT | _CTRL | _ALT:
                self.held.add(key)
                continue
            out += vt100_bytes(
                key,
                bool(self.held & _SHIFT),
                bool(self.held & _CTRL),
                bool(self.held & _ALT),
            )
        return bytes(out)


class FirmwareKeyboard:
    """Routes the machine's key events: serial console while firmware runs, then the i8042."""

    def __init__(self, serial: Serial, i8042: I8042) -> None:
        self.serial = serial
        self.i8042 = i8042
        self.decoder = Set2Decoder()
        self.to_serial = 0

    def key_event(self, set2: bytes) -> bool:
        """False when the guest could not take the key now (the caller counts it as dropped)."""
        if self.i8042.keyboard_irq_enabled_by_guest:
            return self.i8042.key_event(set2)
        data = self.decoder.feed(set2)
        if not data:
            return True  # a release, or a key terminals have no sequence for
        self.to_serial += 1
        return self.serial.enqueue_input(data) == len(data)
