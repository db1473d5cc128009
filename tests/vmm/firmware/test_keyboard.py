"""Keys for the firmware stage: set-2 scancodes back to key presses, then VT100 bytes."""

from __future__ import annotations

from vmgui.vmm.firmware.keyboard import Set2Decoder
from vmgui.vmm.keymap import KeyEncoder


def typed(*events: tuple[str, bool]) -> bytes:
    enc, dec = KeyEncoder(), Set2Decoder()
    return b"".join(dec.feed(enc.encode(q, down)) for q, down in events)


def tap(q: str) -> list[tuple[str, bool]]:
    return [(q, True), (q, False)]


def test_menu_keys_become_the_sequences_seabios_sercon_decodes() -> None:
    assert typed(*tap("down"), *tap("up"), *tap("ret"), *tap("esc")) == b"\x1b[B\x1b[A\r\x1b"
    assert typed(*tap("f1"), *tap("f12"), *tap("pgdn"), *tap("delete")) == (
        b"\x1bOP\x1b[24~\x1b[6~\x1b[3~"
    )


def test_letters_follow_shift_and_ctrl() -> None:
    shifted = typed(("shift", True), *tap("a"), ("shift", False), *tap("a"), *tap("1"))
    assert shifted == b"Aa1"
    assert typed(("ctrl", True), *tap("c"), ("ctrl", False)) == b"\x03"
    assert typed(("shift_r", True), *tap("1"), ("shift_r", False)) == b"!"


def test_pause_and_print_screen_produce_nothing_and_do_not_desync() -> None:
    assert typed(*tap("pause"), *tap("print"), *tap("b")) == b"b"


def test_keys_go_to_the_serial_console_until_the_os_enables_the_i8042() -> None:
    from vmgui.vmm.devices.i8042 import CMD_WRITE_RAM, I8042
    from vmgui.vmm.devices.serial import Serial
    from vmgui.vmm.firmware.keyboard import FirmwareKeyboard

    serial = Serial(lambda data: None, lambda level: None)
    i8042 = I8042(lambda level: None, lambda: None)
    kbd = FirmwareKeyboard(serial, i8042)
    enc = KeyEncoder()
    assert kbd.key_event(enc.encode("down", True)) and kbd.key_event(enc.encode("down", False))
    assert bytes(serial.read(0, 1) for _ in range(3)) == b"\x1b[B"
    assert i8042.read(4, 1) & 1 == 0  # nothing for the i8042
    i8042.write(4, 1, CMD_WRITE_RAM)  # an OS driver writes the command byte, keyboard IRQ on
    i8042.write(0, 1, 0x47)
    assert kbd.key_event(enc.encode("a", True))
    assert i8042.read(4, 1) & 1 and i8042.read(0, 1) == 0x1E  # set 1 'a' (translated)
    assert kbd.to_serial == 1
