"""QEMU key names (QKeyCode "qcodes") and key numbers -> PC keyboard scancode set 2.

The i8042 takes set-2 bytes and translates them to set 1 itself when the guest's command byte asks
for it, exactly as a real keyboard controller does; so everything here speaks set 2. The table
comes from keycodemapdb (the database QEMU generates its keymaps from): per qcode the AT set-1 code
(which is also the basis of QEMU's "number" keys) and the set-2 code, 0xE0xx meaning an E0 prefix.

Special cases follow QEMU's ps2 keyboard: Pause sends E1 14 77 E1 F0 14 F0 77 on press and nothing
on release (with Ctrl held it is Break: E0 7E E0 F0 7E); Print Screen is E0 12 E0 7C, just E0 7C
with Shift or Ctrl held, and SysRq (84) with Alt held. lang1/lang2 (Korean Hangul/Hanja) have no
break code, as on real keyboards.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class KeymapError(ValueError):
    """A key that has no PC scancode (the message names it)."""


#: QKeyCode, in QEMU's qapi/ui.json order (QEMU 8.x).
QCODES: tuple[str, ...] = (
    "unmapped", "shift", "shift_r", "alt", "alt_r", "ctrl", "ctrl_r", "menu", "esc",
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "minus", "equal", "backspace", "tab",
    "q", "w", "e", "r", "t", "y", "u", "i", "o", "p", "bracket_left", "bracket_right", "ret",
    "a", "s", "d", "f", "g", "h", "j", "k", "l", "semicolon", "apostrophe", "grave_accent",
    "backslash", "z", "x", "c", "v", "b", "n", "m", "comma", "dot", "slash", "asterisk", "spc",
    "caps_lock", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "num_lock",
    "scroll_lock", "kp_divide", "kp_multiply", "kp_subtract", "kp_add", "kp_enter", "kp_decimal",
    "sysrq", "kp_0", "kp_1", "kp_2", "kp_3", "kp_4", "kp_5", "kp_6", "kp_7", "kp_8", "kp_9",
    "less", "f11", "f12", "print", "home", "pgup", "pgdn", "end", "left", "up", "down", "right",
    "insert", "delete", "stop", "again", "props", "undo", "front", "copy", "open", "paste",
    "find", "cut", "lf", "help", "meta_l", "meta_r", "compose", "pause", "ro", "hiragana",
    "henkan", "yen", "muhenkan", "katakanahiragana", "kp_comma", "kp_equals", "power", "sleep",
    "wake", "audionext", "audioprev", "audiostop", "audioplay", "audiomute", "volumeup",
    "volumedown", "mediaselect", "mail", "calculator", "computer", "ac_home", "ac_back",
    "ac_forward", "ac_refresh", "ac_bookmarks", "lang1", "lang2",
    "f13", "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24",
)  # fmt: skip

#: qcode -> (AT set-1 code, AT set-2 code); 0 = the key has no code in that set.
SCANCODES: dict[str, tuple[int, int]] = {
    "esc": (0x01, 0x76), "1": (0x02, 0x16), "2": (0x03, 0x1E), "3": (0x04, 0x26),
    "4": (0x05, 0x25), "5": (0x06, 0x2E), "6": (0x07, 0x36), "7": (0x08, 0x3D),
    "8": (0x09, 0x3E), "9": (0x0A, 0x46), "0": (0x0B, 0x45), "minus": (0x0C, 0x4E),
    "equal": (0x0D, 0x55), "backspace": (0x0E, 0x66), "tab": (0x0F, 0x0D),
    "q": (0x10, 0x15), "w": (0x11, 0x1D), "e": (0x12, 0x24), "r": (0x13, 0x2D),
    "t": (0x14, 0x2C), "y": (0x15, 0x35), "u": (0x16, 0x3C), "i": (0x17, 0x43),
    "o": (0x18, 0x44), "p": (0x19, 0x4D), "bracket_left": (0x1A, 0x54),
    "bracket_right": (0x1B, 0x5B), "ret": (0x1C, 0x5A), "ctrl": (0x1D, 0x14),
    "a": (0x1E, 0x1C), "s": (0x1F, 0x1B), "d": (0x20, 0x23), "f": (0x21, 0x2B),
    "g": (0x22, 0x34), "h": (0x23, 0x33), "j": (0x24, 0x3B), "k": (0x25, 0x42),
    "l": (0x26, 0x4B), "semicolon": (0x27, 0x4C), "apostrophe": (0x28, 0x52),
    "grave_accent": (0x29, 0x0E), "shift": (0x2A, 0x12), "backslash": (0x2B, 0x5D),
    "z": (0x2C, 0x1A), "x": (0x2D, 0x22), "c": (0x2E, 0x21), "v": (0x2F, 0x2A),
    "b": (0x30, 0x32), "n": (0x31, 0x31), "m": (0x32, 0x3A), "comma": (0x33, 0x41),
    "dot": (0x34, 0x49), "slash": (0x35, 0x4A), "shift_r": (0x36, 0x59),
    "kp_multiply": (0x37, 0x7C), "asterisk": (0x37, 0x7C), "alt": (0x38, 0x11),
    "spc": (0x39, 0x29), "caps_lock": (0x3A, 0x58),
    "f1": (0x3B, 0x05), "f2": (0x3C, 0x06), "f3": (0x3D, 0x04), "f4": (0x3E, 0x0C),
    "f5": (0x3F, 0x03), "f6": (0x40, 0x0B), "f7": (0x41, 0x83), "f8": (0x42, 0x0A),
    "f9": (0x43, 0x01), "f10": (0x44, 0x09), "num_lock": (0x45, 0x77),
    "scroll_lock": (0x46, 0x7E), "kp_7": (0x47, 0x6C), "kp_8": (0x48, 0x75),
    "kp_9": (0x49, 0x7D), "kp_subtract": (0x4A, 0x7B), "kp_4": (0x4B, 0x6B),
    "kp_5": (0x4C, 0x73), "kp_6": (0x4D, 0x74), "kp_add": (0x4E, 0x79), "kp_1": (0x4F, 0x69),
    "kp_2": (0x50, 0x72), "kp_3": (0x51, 0x7A), "kp_0": (0x52, 0x70),
    "kp_decimal": (0x53, 0x71), "print": (0x54, 0x7F), "less": (0x56, 0x61),
    "f11": (0x57, 0x78), "f12": (0x58, 0x07), "kp_equals": (0x59, 0x0F), "lf": (0x5B, 0),
    "f13": (0x5D, 0x2F), "f14": (0x5E, 0x37), "f15": (0x5F, 0x3F), "f16": (0x55, 0),
    "f20": (0x5A, 0), "f21": (0x74, 0), "f23": (0x6D, 0), "f24": (0x6F, 0),
    "open": (0x64, 0), "paste": (0x65, 0),
    "katakanahiragana": (0x70, 0x13), "ro": (0x73, 0x51), "hiragana": (0x77, 0x62),
    "henkan": (0x79, 0x64), "muhenkan": (0x7B, 0x67), "yen": (0x7D, 0x6A),
    "kp_comma": (0x7E, 0x6D), "lang1": (0xF2, 0xF2), "lang2": (0xF1, 0xF1),
    "f17": (0xE003, 0), "f19": (0xE004, 0), "again": (0xE005, 0), "props": (0xE006, 0),
    "undo": (0xE007, 0), "front": (0xE00C, 0), "audioprev": (0xE010, 0xE015),
    "audionext": (0xE019, 0xE04D), "kp_enter": (0xE01C, 0xE05A), "ctrl_r": (0xE01D, 0xE014),
    "menu": (0xE01E, 0), "audiomute": (0xE020, 0xE023), "calculator": (0xE021, 0xE02B),
    "audioplay": (0xE022, 0xE034), "audiostop": (0xE024, 0xE03B),
    "volumedown": (0xE02E, 0xE021), "volumeup": (0xE030, 0xE032), "ac_home": (0xE032, 0xE03A),
    "kp_divide": (0xE035, 0xE04A), "alt_r": (0xE038, 0xE011), "cut": (0xE03C, 0),
    "find": (0xE041, 0), "pause": (0xE046, 0xE077), "home": (0xE047, 0xE06C),
    "up": (0xE048, 0xE075), "pgup": (0xE049, 0xE07D), "left": (0xE04B, 0xE06B),
    "right": (0xE04D, 0xE074), "end": (0xE04F, 0xE069), "down": (0xE050, 0xE072),
    "pgdn": (0xE051, 0xE07A), "insert": (0xE052, 0xE070), "delete": (0xE053, 0xE071),
    "meta_l": (0xE05B, 0xE01F), "meta_r": (0xE05C, 0xE027), "compose": (0xE05D, 0xE02F),
    "power": (0xE05E, 0xE037), "sleep": (0xE05F, 0xE03F), "wake": (0xE063, 0xE05E),
    "ac_bookmarks": (0xE066, 0xE018), "ac_refresh": (0xE067, 0xE020), "stop": (0xE068, 0xE028),
    "ac_forward": (0xE069, 0xE030), "ac_back": (0xE06A, 0xE038), "computer": (0xE06B, 0xE040),
    "mail": (0xE06C, 0xE048), "mediaselect": (0xE06D, 0xE050), "help": (0xE075, 0),
    "f18": (0xE077, 0), "copy": (0xE078, 0), "f22": (0xE079, 0),
}  # fmt: skip

#: QEMU treats "sysrq" as a synonym of "print".
ALIASES = {"sysrq": "print"}
NO_BREAK = frozenset({"lang1", "lang2"})
_MODIFIERS = {
    "shift": "shift", "shift_r": "shift", "ctrl": "ctrl", "ctrl_r": "ctrl",
    "alt": "alt", "alt_r": "alt",
}  # fmt: skip


def qnum(set1: int) -> int:
    """QEMU's key "number" for a set-1 code: E0-prefixed codes become 0x80 | code."""
    return (set1 & 0x7F) | 0x80 if set1 & 0xFF00 == 0xE000 else set1


def _build_qnum_map() -> dict[int, str]:
    # 0xB7 (E0 37) is the number QEMU and the consoles give Print Screen; 0x54 is SysRq.
    preferred = {0x37: "kp_multiply", 0x54: "print", 0xB7: "print"}
    table: dict[int, str] = {}
    for name, (set1, _) in SCANCODES.items():
        table.setdefault(qnum(set1), name)
    table.update(preferred)
    return table


QNUM_TO_QCODE = _build_qnum_map()


def qcode_for_number(number: int) -> str:
    """The qcode QEMU maps a "number" KeyValue to (numbers are set-1 based, E0 -> 0x80 bit)."""
    name = QNUM_TO_QCODE.get(number)
    if name is None:
        raise KeymapError(f"key number {number:#x} is not a known key")
    return name


def set2_sequence(qcode: str, down: bool) -> bytes:
    """Set-2 bytes for a plain key press/release (no modifier-dependent special cases)."""
    qcode = ALIASES.get(qcode, qcode)
    if qcode not in SCANCODES:
        if qcode in QCODES:
            raise KeymapError(f"key '{qcode}' has no PC keyboard scancode")
        raise KeymapError(f"'{qcode}' is not a QEMU key name (QKeyCode)")
    code = SCANCODES[qcode][1]
    if code == 0:
        raise KeymapError(f"key '{qcode}' has no scancode in PC scancode set 2")
    if qcode in NO_BREAK:
        return bytes([code]) if down else b""
    prefix = b"\xe0" if code & 0xFF00 == 0xE000 else b""
    return prefix + (b"" if down else b"\xf0") + bytes([code & 0xFF])


@dataclass
class KeyEncoder:
    """Turns key events into set-2 bytes, tracking held modifiers for Pause and Print Screen."""

    held: set[str] = field(default_factory=set)

    def _modifier(self, name: str) -> bool:
        return any(_MODIFIERS.get(k) == name for k in self.held)

    def encode(self, qcode: str, down: bool) -> bytes:
        qcode = ALIASES.get(qcode, qcode)
        if qcode == "pause":
            out = b""
            if down:
                out = (
                    b"\xe0\x7e\xe0\xf0\x7e"
                    if self._modifier("ctrl")
                    else bytes.fromhex("e11477e1f014f077")
                )
        elif qcode == "print":
            if self._modifier("alt"):
                out = b"\x84" if down else b"\xf0\x84"
            elif self._modifier("shift") or self._modifier("ctrl"):
                out = b"\xe0\x7c" if down else b"\xe0\xf0\x7c"
            else:
                out = b"\xe0\x12\xe0\x7c" if down else b"\xe0\xf0\x7c\xe0\xf0\x12"
        else:
            out = set2_sequence(qcode, down)
        if down:
            self.held.add(qcode)
        else:
            self.held.discard(qcode)
        return out
