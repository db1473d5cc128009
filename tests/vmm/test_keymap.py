"""Keymap: every QEMU qcode's set-2 bytes, fed through the real i8042 model (which translates to
set 1 as the guest sees it by default), plus QEMU's special cases for Pause and Print Screen."""

from __future__ import annotations

import pytest

from vmgui.vmm import layout
from vmgui.vmm.devices.i8042 import I8042
from vmgui.vmm.keymap import (
    QCODES,
    SCANCODES,
    KeyEncoder,
    KeymapError,
    qcode_for_number,
    qnum,
    set2_sequence,
)

DATA = 0
STATUS = layout.I8042_COMMAND - layout.I8042_DATA


def through_i8042(*events: bytes) -> list[int]:
    """Feed key events to the real i8042 model (default command byte: translation to set 1 on)
    and return every byte the guest reads from the data port."""
    dev = I8042(irq=lambda level: None, on_reset=lambda: None)
    out: list[int] = []
    for seq in events:
        assert dev.key_event(seq)
        while dev.read(STATUS, 1) & 1:
            out.append(dev.read(DATA, 1))
    return out


@pytest.mark.parametrize(
    "qcode",
    [
        q
        for q, (s1, s2) in SCANCODES.items()
        if s2 and q not in ("print", "pause", "lang1", "lang2")
    ],
)
def test_make_and_break_translate_to_the_set1_code(qcode: str) -> None:
    set1 = SCANCODES[qcode][0]
    prefix = [0xE0] if set1 & 0xFF00 == 0xE000 else []
    make, brk = set2_sequence(qcode, True), set2_sequence(qcode, False)
    assert through_i8042(make, brk) == prefix + [set1 & 0xFF] + prefix + [(set1 & 0xFF) | 0x80]


def test_well_known_codes() -> None:
    assert set2_sequence("a", True) == b"\x1c" and set2_sequence("a", False) == b"\xf0\x1c"
    assert set2_sequence("kp_enter", False) == b"\xe0\xf0\x5a"
    assert set2_sequence("f7", True) == b"\x83"
    assert set2_sequence("sysrq", True) == set2_sequence("print", True)


def test_every_qcode_is_known() -> None:
    assert len(QCODES) == len(set(QCODES)) == 162
    for q in QCODES:
        if q in ("unmapped",):
            with pytest.raises(KeymapError, match="no PC keyboard scancode"):
                set2_sequence(q, True)
        elif q not in ("sysrq",):
            assert q in SCANCODES, q
    with pytest.raises(KeymapError, match="set 2"):
        set2_sequence("again", True)  # Sun key: only a set-1 code exists
    with pytest.raises(KeymapError, match="not a QEMU key name"):
        set2_sequence("enter", True)


def test_special_sequences_follow_qemu() -> None:
    k = KeyEncoder()
    assert k.encode("pause", True) == bytes.fromhex("e11477e1f014f077")
    assert k.encode("pause", False) == b""
    assert k.encode("print", True) == bytes.fromhex("e012e07c")
    assert k.encode("print", False) == bytes.fromhex("e0f07ce0f012")
    assert through_i8042(bytes.fromhex("e012e07c")) == [0xE0, 0x2A, 0xE0, 0x37]
    k.encode("ctrl", True)
    assert k.encode("pause", True) == bytes.fromhex("e07ee0f07e")
    assert k.encode("print", True) == bytes.fromhex("e07c")
    k.encode("ctrl", False)
    k.encode("alt_r", True)
    assert k.encode("print", True) == b"\x84" and k.encode("print", False) == b"\xf0\x84"
    assert through_i8042(b"\x84") == [0x54]
    assert k.encode("lang1", True) == b"\xf2" and k.encode("lang1", False) == b""


def test_numbers_are_qemu_qnums() -> None:
    assert qcode_for_number(0x1E) == "a"
    assert qcode_for_number(0x9C) == "kp_enter"  # E0 1C
    assert qcode_for_number(0xD3) == "delete"  # E0 53
    assert qcode_for_number(0x37) == "kp_multiply"
    assert qcode_for_number(0x54) == "print"
    assert qcode_for_number(0xC6) == "pause"
    for name, (set1, _) in SCANCODES.items():
        assert SCANCODES[qcode_for_number(qnum(set1))][0] == set1, name
    with pytest.raises(KeymapError):
        qcode_for_number(0x1FF)
