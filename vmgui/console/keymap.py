"""Physical keys for consoles: evdev keycodes -> QEMU key names -> XT scancodes and X keysyms.

A console sends the key's *position* (so any host keyboard layout types what the guest's layout
says) plus, for RFB, an X11 keysym. The position comes from the host as an evdev keycode
(`QKeyEvent.nativeScanCode() - 8` on X11 and Wayland); it is named with QEMU's key names
(qcodes) so one table, `vmgui.vmm.keymap.SCANCODES` (keycodemapdb's values), gives the scancode.
Scancodes are in QEMU's "number" form: set-1 codes, E0-prefixed keys as 0x80 | code, which is
what QMP's `input-send-event` and RFB's QEMU extended key event take.
"""

from __future__ import annotations

from vmgui.vmm.keymap import QNUM_TO_QCODE, SCANCODES, KeymapError, qnum

#: X11/Wayland report XKB keycodes, which are evdev keycodes plus this offset.
XKB_EVDEV_OFFSET = 8

# Linux input-event-codes.h: KEY_ESC (1) .. KEY_KPDOT (83) plus KEY_102ND, KEY_F11 and KEY_F12
# (86..88) equal their AT set-1 scancodes; the keys after that are listed by name.
_EVDEV_SAME_AS_SET1 = (*range(1, 84), 86, 87, 88)
_EVDEV_NAMED: dict[int, str] = {
    85: "katakanahiragana", 89: "ro", 90: "katakanahiragana", 91: "hiragana", 92: "henkan",
    93: "katakanahiragana", 94: "muhenkan", 95: "kp_comma", 96: "kp_enter", 97: "ctrl_r",
    98: "kp_divide", 99: "print", 100: "alt_r", 101: "lf", 102: "home", 103: "up", 104: "pgup",
    105: "left", 106: "right", 107: "end", 108: "down", 109: "pgdn", 110: "insert",
    111: "delete", 113: "audiomute", 114: "volumedown", 115: "volumeup", 116: "power",
    117: "kp_equals", 119: "pause", 121: "kp_comma", 122: "lang1", 123: "lang2", 124: "yen",
    125: "meta_l", 126: "meta_r", 127: "compose", 128: "stop", 129: "again", 130: "props",
    131: "undo", 132: "front", 133: "copy", 134: "open", 135: "paste", 136: "find", 137: "cut",
    138: "help", 139: "menu", 140: "calculator", 142: "sleep", 143: "wake", 155: "mail",
    156: "ac_bookmarks", 157: "computer", 158: "ac_back", 159: "ac_forward", 163: "audionext",
    164: "audioplay", 165: "audioprev", 166: "audiostop", 172: "ac_home", 173: "ac_refresh",
    183: "f13", 184: "f14", 185: "f15", 186: "f16", 187: "f17", 188: "f18", 189: "f19",
    190: "f20", 191: "f21", 192: "f22", 193: "f23", 194: "f24", 226: "mediaselect",
}  # fmt: skip

EVDEV_TO_QCODE: dict[int, str] = {
    **{code: QNUM_TO_QCODE[code] for code in _EVDEV_SAME_AS_SET1},
    **_EVDEV_NAMED,
}

# X11 keysyms (X11/keysymdef.h) of keys that type no character; RFB servers want one per key.
_KEYSYMS: dict[str, int] = {
    "esc": 0xFF1B, "backspace": 0xFF08, "tab": 0xFF09, "ret": 0xFF0D, "lf": 0xFF0A,
    "shift": 0xFFE1, "shift_r": 0xFFE2, "ctrl": 0xFFE3, "ctrl_r": 0xFFE4, "caps_lock": 0xFFE5,
    "meta_l": 0xFFEB, "meta_r": 0xFFEC, "alt": 0xFFE9, "alt_r": 0xFFEA, "menu": 0xFF67,
    "compose": 0xFF67, "num_lock": 0xFF7F, "scroll_lock": 0xFF14, "pause": 0xFF13,
    "print": 0xFF61, "sysrq": 0xFF15, "home": 0xFF50, "left": 0xFF51, "up": 0xFF52,
    "right": 0xFF53, "down": 0xFF54, "pgup": 0xFF55, "pgdn": 0xFF56, "end": 0xFF57,
    "insert": 0xFF63, "delete": 0xFFFF, "kp_enter": 0xFF8D, "kp_multiply": 0xFFAA,
    "kp_add": 0xFFAB, "kp_subtract": 0xFFAD, "kp_decimal": 0xFFAE, "kp_divide": 0xFFAF,
    "kp_equals": 0xFFBD, "kp_comma": 0xFFAC, "help": 0xFF6A,
    **{f"kp_{d}": 0xFFB0 + d for d in range(10)},
    **{f"f{n}": 0xFFBD + n for n in range(1, 25)},
}  # fmt: skip
# The unshifted character of each key of a US layout, for the keysym when the host gave no text.
_US_CHARS: dict[str, str] = {
    **{c: c for c in "abcdefghijklmnopqrstuvwxyz0123456789"},
    "minus": "-", "equal": "=", "bracket_left": "[", "bracket_right": "]", "semicolon": ";",
    "apostrophe": "'", "grave_accent": "`", "backslash": "\\", "comma": ",", "dot": ".",
    "slash": "/", "spc": " ", "less": "<",
}  # fmt: skip


def qcode_for_evdev(code: int) -> str | None:
    """QEMU's name of the key at evdev position `code`, None for keys a PC keyboard lacks."""
    return EVDEV_TO_QCODE.get(code)


#: Print Screen is E0 37 in set 1 (what a keyboard sends, after a fake shift): QEMU numbers it
#: 0xB7; 0x54 is SysRq (Alt+Print Screen).
_QNUM_OVERRIDES = {"print": 0xB7}


def scancode_for_qcode(qcode: str) -> int:
    """The key's scancode in QEMU's number form (E0 keys 0x80 | code); KeymapError if none."""
    if qcode in _QNUM_OVERRIDES:
        return _QNUM_OVERRIDES[qcode]
    codes = SCANCODES.get(qcode)
    if codes is None or codes[0] == 0 or codes[0] > 0xE07F:
        raise KeymapError(f"key '{qcode}' has no PC keyboard scancode")
    return qnum(codes[0])


def keysym_for(qcode: str, text: str = "") -> int:
    """The X11 keysym for a key press: from the typed character, else the key's own name.

    Latin-1 characters are their own keysym; other Unicode characters are 0x01000000 | code
    point (the X11 convention RFB servers accept). 0 means "no keysym" (RFB servers that need
    one then rely on the scancode).
    """
    if qcode in _KEYSYMS:
        return _KEYSYMS[qcode]
    char = text if len(text) == 1 and text.isprintable() else _US_CHARS.get(qcode, "")
    if not char:
        return 0
    point = ord(char)
    return point if 0x20 <= point <= 0xFF else 0x0100_0000 | point
