"""Physical keys: evdev positions -> QEMU key numbers (what QMP and RFB's QEMU key event take)."""

from __future__ import annotations

import pytest

from vmgui.console.keymap import (
    EVDEV_TO_QCODE,
    keysym_for,
    qcode_for_evdev,
    scancode_for_qcode,
)
from vmgui.vmm.keymap import KeymapError, qcode_for_number


@pytest.mark.parametrize(
    ("evdev", "qcode", "number"),
    [
        (1, "esc", 0x01), (30, "a", 0x1E), (16, "q", 0x10), (42, "shift", 0x2A),
        (29, "ctrl", 0x1D), (56, "alt", 0x38), (86, "less", 0x56), (88, "f12", 0x58),
        (96, "kp_enter", 0x9C), (97, "ctrl_r", 0x9D), (100, "alt_r", 0xB8), (103, "up", 0xC8),
        (111, "delete", 0xD3), (125, "meta_l", 0xDB), (99, "print", 0xB7),
    ],
)  # fmt: skip
def test_evdev_positions_map_to_qemu_numbers(evdev: int, qcode: str, number: int) -> None:
    assert qcode_for_evdev(evdev) == qcode
    assert scancode_for_qcode(qcode) == number


def test_every_mapped_key_is_one_our_vmm_accepts_back() -> None:
    for qcode in set(EVDEV_TO_QCODE.values()):
        try:
            number = scancode_for_qcode(qcode)
        except KeymapError:
            continue  # keys a PC keyboard lacks (no set-1 code)
        back = qcode_for_number(number)
        assert back == qcode or {back, qcode} <= {"kp_multiply", "asterisk", "print", "sysrq"}


def test_unknown_positions_and_keys() -> None:
    assert qcode_for_evdev(0) is None and qcode_for_evdev(9999) is None
    with pytest.raises(KeymapError):
        scancode_for_qcode("no-such-key")


def test_keysyms_from_text_then_from_the_key() -> None:
    assert keysym_for("a", "A") == ord("A")  # what the layout typed
    assert keysym_for("a") == ord("a")  # no text: the US character of that position
    assert keysym_for("ret", "\r") == 0xFF0D  # keys that type no character have their own
    assert keysym_for("f5") == 0xFFC2
    assert keysym_for("2", "é") == 0xE9  # Latin-1 is its own keysym
    assert keysym_for("q", "ж") == 0x0100_0000 | ord("ж")  # other Unicode: 0x01000000 | code
