"""The i8042 controller + AT keyboard model, driven through its two ports like Linux's driver."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmgui.vmm import layout
from vmgui.vmm.devices import i8042 as k
from vmgui.vmm.devices.i8042 import I8042, KEY_QUEUE_SIZE, set2_to_set1

DATA = 0
CMD = layout.I8042_COMMAND - layout.I8042_DATA


class Kbc:
    """An I8042 with its callbacks recorded and the guest-side helpers Linux's driver uses."""

    def __init__(self, with_aux_irq: bool = True) -> None:
        self.irqs: list[bool] = []
        self.aux_irqs: list[bool] = []
        self.resets = 0
        self.dev = I8042(
            self.irqs.append, self._reset, self.aux_irqs.append if with_aux_irq else None
        )

    def _reset(self) -> None:
        self.resets += 1

    def status(self) -> int:
        return self.dev.read(CMD, 1)

    def command(self, cmd: int, *params: int) -> None:
        assert not self.status() & k.STATUS_IBF
        self.dev.write(CMD, 1, cmd)
        for p in params:
            self.dev.write(DATA, 1, p)

    def send(self, byte: int) -> None:
        self.dev.write(DATA, 1, byte)

    def drain(self) -> bytes:
        out = bytearray()
        while self.status() & k.STATUS_OBF:
            out.append(self.dev.read(DATA, 1))
        return bytes(out)


@pytest.fixture
def kbc() -> Kbc:
    return Kbc()


def test_power_on_state(kbc: Kbc) -> None:
    assert kbc.status() == k.STATUS_NOT_INHIBITED | k.STATUS_SYS
    kbc.command(k.CMD_READ_RAM)
    assert kbc.status() & k.STATUS_A2
    assert kbc.drain() == bytes([k.CTR_KBD_INT | k.CTR_SYS | k.CTR_XLATE])
    assert kbc.dev.command_byte == 0x45
    assert kbc.dev.scancode_set == 2
    assert kbc.dev.read(1, 1) == 0xFF and kbc.dev.read(3, 1) == 0xFF  # 0x61-0x63 not ours
    assert I8042.PORT_COUNT == 5


def test_controller_tests_answer(kbc: Kbc) -> None:
    kbc.command(k.CMD_SELF_TEST)
    assert kbc.drain() == b"\x55"
    kbc.command(k.CMD_KBD_TEST)
    assert kbc.drain() == b"\x00"
    kbc.command(k.CMD_AUX_TEST)
    assert kbc.drain() == b"\x00"
    kbc.command(k.CMD_READ_TEST_INPUTS)
    assert kbc.drain() == b"\x00"
    kbc.command(k.CMD_READ_INPUT_PORT)
    assert kbc.drain() == bytes([k.INPUT_PORT])


def test_command_byte_write_read_and_sys_flag(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, 0x00)
    assert not kbc.status() & k.STATUS_SYS
    assert not kbc.status() & k.STATUS_A2  # the parameter went to the data port
    kbc.command(k.CMD_READ_RAM)
    assert kbc.drain() == b"\x00"
    kbc.command(k.CMD_SELF_TEST)
    kbc.drain()
    assert kbc.status() & k.STATUS_SYS
    kbc.command(k.CMD_WRITE_RAM + 5, 0x99)  # other controller RAM bytes are plain storage
    kbc.command(k.CMD_READ_RAM + 5)
    assert kbc.drain() == b"\x99"


def test_linux_i8042_probe_sequence(kbc: Kbc) -> None:
    """i8042_controller_check/selftest/init and i8042_check_aux, in order."""
    assert kbc.status() != 0xFF
    kbc.drain()
    kbc.command(k.CMD_SELF_TEST)
    assert kbc.drain() == b"\x55"
    ctrs = []
    for _ in range(2):
        kbc.command(k.CMD_READ_RAM)
        ctrs.append(kbc.drain())
    assert ctrs[0] == ctrs[1]
    ctr = ctrs[0][0] & ~(k.CTR_KBD_INT | k.CTR_AUX_INT) | k.CTR_KBD_DISABLE | k.CTR_AUX_DISABLE
    kbc.command(k.CMD_WRITE_RAM, ctr)
    # i8042_check_aux: loop test, bit-assignment test, then the aux IRQ test.
    kbc.command(k.CMD_WRITE_AUX_OUTPUT, 0x5A)
    assert kbc.status() & k.STATUS_AUX_OBF
    assert kbc.drain() == b"\x5a"
    kbc.command(k.CMD_AUX_DISABLE)
    kbc.command(k.CMD_READ_RAM)
    assert kbc.drain()[0] & k.CTR_AUX_DISABLE
    kbc.command(k.CMD_AUX_ENABLE)
    kbc.command(k.CMD_READ_RAM)
    assert not kbc.drain()[0] & k.CTR_AUX_DISABLE
    kbc.command(k.CMD_WRITE_RAM, (ctr & ~k.CTR_AUX_DISABLE) | k.CTR_AUX_INT)
    irq1 = list(kbc.irqs)
    kbc.command(k.CMD_WRITE_AUX_OUTPUT, 0xA5)
    assert kbc.aux_irqs == [True] and kbc.irqs == irq1
    assert kbc.drain() == b"\xa5"
    assert kbc.aux_irqs == [True, False]
    # psmouse's first command to the (absent) mouse is refused at once with a timeout.
    kbc.command(k.CMD_WRITE_AUX, 0xFF)
    status = kbc.status()
    assert status & (k.STATUS_OBF | k.STATUS_AUX_OBF | k.STATUS_TIMEOUT) == (
        k.STATUS_OBF | k.STATUS_AUX_OBF | k.STATUS_TIMEOUT
    )
    assert kbc.drain() == b"\xfe"
    assert not kbc.status() & k.STATUS_TIMEOUT


def test_aux_irq_is_optional() -> None:
    kbc = Kbc(with_aux_irq=False)
    kbc.command(k.CMD_WRITE_RAM, k.CTR_KBD_INT | k.CTR_AUX_INT)
    kbc.command(k.CMD_WRITE_AUX_OUTPUT, 0xA5)
    assert kbc.irqs == []  # an aux byte never raises the keyboard's IRQ 1
    assert kbc.drain() == b"\xa5"


def test_keyboard_reset_and_identify(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, k.CTR_KBD_INT)  # untranslated
    kbc.send(k.KBD_RESET)
    assert kbc.drain() == b"\xfa\xaa"
    kbc.send(k.KBD_IDENTIFY)
    assert kbc.drain() == b"\xfa\xab\x83"
    kbc.command(k.CMD_WRITE_RAM, k.CTR_KBD_INT | k.CTR_XLATE)
    kbc.send(k.KBD_IDENTIFY)
    assert kbc.drain() == b"\xfa\xab\x41"  # the ID goes through the translator too, as on QEMU


def test_keyboard_commands_with_parameters(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, k.CTR_KBD_INT)
    kbc.send(k.KBD_SET_LEDS)
    assert kbc.drain() == b"\xfa"
    kbc.send(0x06)
    assert kbc.drain() == b"\xfa"
    assert kbc.dev.leds == 0x06
    kbc.send(k.KBD_TYPEMATIC)
    kbc.send(0x20)
    assert kbc.drain() == b"\xfa\xfa"
    kbc.send(k.KBD_SCANCODE_SET)
    kbc.send(0)
    assert kbc.drain() == b"\xfa\xfa\x02"
    kbc.send(k.KBD_SCANCODE_SET)
    kbc.send(1)
    assert kbc.drain() == b"\xfa\xfa"
    assert kbc.dev.scancode_set == 1
    kbc.send(k.KBD_SCANCODE_SET)
    kbc.send(3)
    assert kbc.drain() == b"\xfa\xfe"  # set 3 is not supported
    assert kbc.dev.scancode_set == 1
    kbc.send(k.KBD_SET_LEDS)
    kbc.send(k.KBD_ECHO)  # a command byte aborts the pending parameter
    assert kbc.drain() == b"\xfa\xee"
    assert kbc.dev.leds == 0x06


def test_keyboard_simple_commands(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, k.CTR_KBD_INT)
    for cmd, reply in [
        (k.KBD_ECHO, b"\xee"),
        (k.KBD_ENABLE, b"\xfa"),
        (k.KBD_DEFAULTS, b"\xfa"),
        (0xF8, b"\xfa"),
        (0x01, b"\xfe"),
    ]:
        kbc.send(cmd)
        assert kbc.drain() == reply, hex(cmd)
    kbc.send(k.KBD_RESEND)
    assert kbc.drain() == b"\xfe"  # the last byte the keyboard sent


def test_new_command_discards_unread_replies(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, 0)  # no IRQ, no translation
    kbc.send(k.KBD_IDENTIFY)
    assert kbc.dev.read(DATA, 1) == 0xFA  # 0xAB moves into the buffer at once
    kbc.send(k.KBD_ECHO)
    assert kbc.drain() == b"\xab\xee"  # 0x83 was dropped


def test_scanning_disable_drops_keys_enable_resumes(kbc: Kbc) -> None:
    assert kbc.dev.key_event(b"\x1c")  # goes straight into the output buffer
    assert kbc.dev.key_event(b"\x32")  # waits in the keyboard
    kbc.send(k.KBD_DISABLE)
    assert kbc.drain() == b"\x1e\xfa"  # queued scancode discarded, as on a real keyboard
    assert not kbc.dev.key_event(b"\x1c")
    kbc.send(k.KBD_ENABLE)
    assert kbc.drain() == b"\xfa"
    assert kbc.dev.key_event(b"\x1c")
    assert kbc.drain() == b"\x1e"


@pytest.mark.parametrize(
    ("set2", "set1"),
    [
        (b"\x1c", b"\x1e"),  # a
        (b"\xf0\x1c", b"\x9e"),  # a released
        (b"\xe0\x75", b"\xe0\x48"),  # up arrow
        (b"\xe0\xf0\x75", b"\xe0\xc8"),  # up arrow released
        (b"\x76", b"\x01"),  # Esc
        (b"\x16", b"\x02"),  # 1
        (b"\x45", b"\x0b"),  # 0
        (b"\x66", b"\x0e"),  # Backspace
        (b"\x0d", b"\x0f"),  # Tab
        (b"\x15", b"\x10"),  # q
        (b"\x5a", b"\x1c"),  # Enter
        (b"\x14", b"\x1d"),  # left Ctrl
        (b"\x12", b"\x2a"),  # left Shift
        (b"\x1a", b"\x2c"),  # z
        (b"\x59", b"\x36"),  # right Shift
        (b"\x7c", b"\x37"),  # keypad *
        (b"\x11", b"\x38"),  # left Alt
        (b"\x29", b"\x39"),  # Space
        (b"\x58", b"\x3a"),  # Caps Lock
        (b"\x05", b"\x3b"),  # F1
        (b"\x83", b"\x41"),  # F7 (the one code above 0x7F)
        (b"\x09", b"\x44"),  # F10
        (b"\x77", b"\x45"),  # Num Lock
        (b"\x78", b"\x57"),  # F11
        (b"\x07", b"\x58"),  # F12
        (b"\x61", b"\x56"),  # 102nd key (<>)
        (b"\xe0\x14", b"\xe0\x1d"),  # right Ctrl
        (b"\xe0\x11", b"\xe0\x38"),  # right Alt
        (b"\xe0\x5a", b"\xe0\x1c"),  # keypad Enter
        (b"\xe0\x6b", b"\xe0\x4b"),  # left arrow
        (b"\xe0\x74", b"\xe0\x4d"),  # right arrow
        (b"\xe0\x72", b"\xe0\x50"),  # down arrow
        (b"\xe0\x71", b"\xe0\x53"),  # Delete
        (b"\xe0\x1f", b"\xe0\x5b"),  # left GUI
        (b"\xe0\x12\xe0\x7c", b"\xe0\x2a\xe0\x37"),  # Print Screen
        (b"\xe0\xf0\x7c\xe0\xf0\x12", b"\xe0\xb7\xe0\xaa"),  # Print Screen released
        (b"\xe1\x14\x77\xe1\xf0\x14\xf0\x77", b"\xe1\x1d\x45\xe1\x9d\xc5"),  # Pause
    ],
)
def test_set2_to_set1_translation(kbc: Kbc, set2: bytes, set1: bytes) -> None:
    assert set2_to_set1(set2) == set1
    assert kbc.dev.key_event(set2)
    assert kbc.drain() == set1  # the controller translates byte by byte, with the same result


def test_translation_table_is_a_bijection_on_keys() -> None:
    """Every set-2 code below 0x80 maps to its own set-1 code (breaks can be told apart)."""
    codes = [k.SET2_TO_SET1[b] for b in range(1, 0x80)]
    assert len(set(codes)) == len(codes)
    assert all(c < 0x80 for c in codes)


def test_untranslated_and_set1_modes(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, k.CTR_KBD_INT)
    assert kbc.dev.key_event(b"\xe0\xf0\x75")
    assert kbc.drain() == b"\xe0\xf0\x75"  # raw set 2
    kbc.send(k.KBD_SCANCODE_SET)
    kbc.send(1)
    kbc.drain()
    assert kbc.dev.key_event(b"\xe0\xf0\x75")
    assert kbc.drain() == b"\xe0\xc8"  # the keyboard itself speaks set 1


def test_keyboard_irq_follows_obf(kbc: Kbc) -> None:
    assert kbc.dev.key_event(b"\x1c")
    assert kbc.irqs == [True]
    assert kbc.dev.key_event(b"\xf0\x1c")
    assert kbc.dev.read(DATA, 1) == 0x1E
    # The next byte loads at once: the line drops and rises again (a new edge).
    assert kbc.irqs == [True, False, True]
    assert kbc.dev.read(DATA, 1) == 0x9E
    assert kbc.irqs == [True, False, True, False]
    assert kbc.dev.read(DATA, 1) == 0x9E  # an empty buffer reads its last byte
    assert kbc.irqs[-1] is False


def test_irq_disabled_in_command_byte(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, k.CTR_XLATE)
    assert kbc.dev.key_event(b"\x1c")
    assert kbc.status() & k.STATUS_OBF
    assert kbc.irqs == []
    kbc.command(k.CMD_WRITE_RAM, k.CTR_XLATE | k.CTR_KBD_INT)
    assert kbc.irqs == [True]  # enabling the IRQ with a full buffer raises it
    assert kbc.drain() == b"\x1e"


def test_port_disable_holds_keys_until_enabled(kbc: Kbc) -> None:
    kbc.command(k.CMD_KBD_DISABLE)
    assert kbc.dev.command_byte & k.CTR_KBD_DISABLE
    assert kbc.dev.key_event(b"\x1c")
    assert not kbc.status() & k.STATUS_OBF
    kbc.command(k.CMD_KBD_ENABLE)
    assert kbc.drain() == b"\x1e"
    kbc.command(k.CMD_KBD_DISABLE)
    kbc.send(k.KBD_ECHO)  # writing to the keyboard re-enables its port
    assert kbc.drain() == b"\xee"
    assert not kbc.dev.command_byte & k.CTR_KBD_DISABLE


def test_controller_replies_go_before_keys(kbc: Kbc) -> None:
    kbc.command(k.CMD_KBD_DISABLE)
    assert kbc.dev.key_event(b"\x1c")
    kbc.command(k.CMD_READ_RAM)
    kbc.command(k.CMD_KBD_ENABLE)
    assert kbc.drain() == bytes([0x45 | k.CTR_KBD_DISABLE, 0x1E])
    assert kbc.dev.key_event(b"\x1c\xf0\x1c\x1c")
    assert kbc.dev.read(DATA, 1) == 0x1E  # 0x9E loads into the buffer at once
    kbc.send(k.KBD_ECHO)  # keyboard replies overtake still-queued scancodes
    assert kbc.drain() == b"\x9e\xee\x1e"


def test_write_output_buffers(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_KBD_OUTPUT, 0x1C)
    assert not kbc.status() & k.STATUS_AUX_OBF
    assert kbc.drain() == b"\x1c"  # written bytes are not translated
    assert kbc.irqs == [True, False]


@pytest.mark.parametrize("cmd", range(0xF0, 0x100))
def test_pulse_output_lines(cmd: int) -> None:
    kbc = Kbc()
    kbc.command(cmd)
    assert kbc.resets == (0 if cmd & 1 else 1)


def test_output_port_write_resets_on_bit0_clear(kbc: Kbc) -> None:
    kbc.command(k.CMD_READ_OUTPUT_PORT)
    assert kbc.drain() == bytes([k.DEFAULT_OUTPORT])
    kbc.command(k.CMD_WRITE_OUTPUT_PORT, 0xDF)  # A20 on, reset line high: what Linux writes
    assert kbc.resets == 0
    kbc.command(k.CMD_READ_OUTPUT_PORT)
    assert kbc.drain() == b"\xdf"
    kbc.command(k.CMD_A20_DISABLE)
    kbc.command(k.CMD_READ_OUTPUT_PORT)
    assert kbc.drain() == b"\xdd"
    kbc.command(k.CMD_WRITE_OUTPUT_PORT, 0xDE)
    assert kbc.resets == 1


def test_key_queue_is_bounded_all_or_nothing(kbc: Kbc) -> None:
    kbc.command(k.CMD_WRITE_RAM, 0)
    key = b"\xe0\xf0\x75"
    # One byte sits in the output buffer, the rest in the queue.
    accepted = 0
    while kbc.dev.key_event(key):
        accepted += 1
    assert accepted == (KEY_QUEUE_SIZE + 1) // len(key)
    assert kbc.dev.key_event(b"\x1c" * ((KEY_QUEUE_SIZE + 1) % len(key)))
    assert not kbc.dev.key_event(b"\x1c")
    assert kbc.drain() == key * accepted + b"\x1c" * ((KEY_QUEUE_SIZE + 1) % len(key))
    assert kbc.dev.key_event(key)


def test_controller_reply_queue_is_bounded(kbc: Kbc) -> None:
    for _ in range(100):
        kbc.command(k.CMD_SELF_TEST)
    assert kbc.drain() == b"\x55" * (k.CONTROLLER_QUEUE_SIZE + 1)


def test_unknown_commands_are_ignored_and_reset_works(kbc: Kbc) -> None:
    for cmd in (0x00, 0x10, 0x90, 0xB5, 0xC5, 0xE5):
        kbc.command(cmd)
    assert kbc.drain() == b""
    kbc.command(k.CMD_WRITE_RAM, 0x00)
    assert kbc.dev.key_event(b"\x1c")
    kbc.dev.reset()
    assert kbc.dev.command_byte == k.DEFAULT_CTR
    assert kbc.drain() == b""
    assert kbc.dev.irq_level is False


accesses = st.lists(
    st.tuples(
        st.sampled_from(["r", "w", "key"]),
        st.sampled_from([0, 0, 4, 4, 1, 5]),
        st.sampled_from([1, 1, 1, 2, 4]),
        st.integers(0, 0xFFFFFFFF),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(accesses)
def test_random_port_sequences_keep_invariants(ops: list[tuple[str, int, int, int]]) -> None:
    kbc = Kbc()
    for kind, offset, size, value in ops:
        if kind == "r":
            assert 0 <= kbc.dev.read(offset, size) < 1 << (8 * size)
        elif kind == "w":
            kbc.dev.write(offset, size, value & ((1 << (8 * size)) - 1))
        else:
            kbc.dev.key_event(value.to_bytes(4, "little")[:size])
        status = kbc.status()
        assert not status & k.STATUS_IBF
        assert bool(status & k.STATUS_OBF) or not status & (k.STATUS_AUX_OBF | k.STATUS_TIMEOUT)
        for line in (kbc.irqs, kbc.aux_irqs):
            assert all(a != b for a, b in zip(line, line[1:], strict=False))
        assert (kbc.irqs[-1] if kbc.irqs else False) == kbc.dev.irq_level
        if kbc.dev.irq_level:
            assert status & k.STATUS_OBF and not status & k.STATUS_AUX_OBF
            assert kbc.dev.command_byte & k.CTR_KBD_INT
        assert len(kbc.dev._kbd_keys) <= KEY_QUEUE_SIZE
