"""i8042 PS/2 keyboard controller with an AT keyboard on port 1 and nothing on the aux port.

Guest-visible contract. The device decodes layout.I8042_DATA..layout.I8042_COMMAND as one
range (`I8042.PORT_COUNT` ports): offset 0 is the data port (0x60), offset 4 is status (read)
and command (write) (0x64); offsets 1-3 read 0xFF and drop writes (KVM's in-kernel PIT owns
port 0x61 anyway).

- Status: OBF (output buffer full), IBF (always 0: input is consumed at once), SYS (set by
  self-test or command byte bit 2), A2 (last write went to the command port), keyboard not
  inhibited (bit 4, always 1), AUX OBF (the byte came from the aux port), TIMEOUT (the aux
  byte is a "no device" reply).
- Controller commands: 0x20-0x3F read RAM (0x20 = command byte), 0x60-0x7F write RAM (0x60 =
  command byte: bit 0 port-1 IRQ, bit 1 aux IRQ, bit 2 SYS, bit 4 port 1 disabled, bit 5 aux
  disabled, bit 6 set-2 -> set-1 translation), 0xA7/0xA8 aux disable/enable, 0xA9 aux interface
  test -> 0x00, 0xAA self-test -> 0x55, 0xAB port-1 test -> 0x00, 0xAD/0xAE port 1
  disable/enable, 0xC0 input port, 0xD0/0xD1 read/write output port (bit 0 clear = reset),
  0xD2 write port-1 output buffer, 0xD3 write aux output buffer (loop-back), 0xD4 write to the
  aux device, 0xDD/0xDF A20 (stored only: KVM has no A20 gate), 0xE0 test inputs -> 0x00,
  0xF0-0xFF pulse output lines (bit 0 clear = pulse reset, so 0xFE resets) -> `on_reset()`.
  Unknown commands are ignored.
- The aux port has no device: every byte sent with 0xD4 is answered by 0xFE with AUX OBF and
  TIMEOUT set, which is how a real controller reports a silent mouse port; Linux's psmouse
  gives up at once. Without `aux_irq` Linux's aux IRQ self-test times out (250 ms) and it
  drops the aux port; with `aux_irq` wired to IRQ 12 it registers the port and finds no mouse.
- Keyboard commands (writes to 0x60 with no controller parameter pending; a write also clears
  the port-1 disable bit, as on real controllers): 0xED LEDs, 0xF3 typematic (each + one
  parameter byte, ACK for both), 0xF0 get/set scancode set (0 -> current set; 1 and 2
  supported, others answered 0xFE), 0xF2 identify -> FA AB 83 (FA AB 41 once translated, as
  on QEMU), 0xF4 enable, 0xF5 disable +
  defaults, 0xF6 defaults, 0xF7-0xFD ACK, 0xEE echo -> EE, 0xFE resend, 0xFF reset -> FA AA;
  anything else -> 0xFE. A new command discards unread replies to the previous one; replies
  go ahead of queued scancodes.
- Bytes travel from the keyboard to the output buffer one at a time, controller replies first.
  With command byte bit 6 set they are translated set 2 -> set 1 on the way (0xF0 break prefix
  becomes bit 7 of the next code; E0/E1 and replies such as FA/AA/AB pass unchanged, 83 -> 41).
- `irq(level)` follows "OBF with a port-1 byte and command byte bit 0"; `aux_irq(level)` the
  same for aux bytes and bit 1. Reading the data port empties the buffer (the next byte, if
  any, loads at once); reading it when empty returns the last byte again.
- Host keys: `key_event` queues one key's set-2 bytes, all or nothing, in a 16-byte keyboard
  buffer (`KEY_QUEUE_SIZE`); it returns False when the guest disabled scanning or the buffer
  is full (the guest is not reading), and the caller decides whether to drop or retry.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from vmgui.vmm import layout
from vmgui.vmm.devices.byte_registers import ByteRegisters

#: Keyboard bytes (scancodes) waiting for the guest; `key_event` refuses what does not fit.
#: 16 like a real keyboard's buffer (and Firecracker's): Linux's i8042_flush() reads at most
#: 16 bytes and declares "no controller" if more keep coming.
KEY_QUEUE_SIZE = 16
#: Controller/aux replies waiting for the guest; more are dropped (the guest is not reading).
CONTROLLER_QUEUE_SIZE = 16

DATA = 0
STATUS_COMMAND = layout.I8042_COMMAND - layout.I8042_DATA

STATUS_OBF = 0x01
STATUS_IBF = 0x02
STATUS_SYS = 0x04
STATUS_A2 = 0x08
STATUS_NOT_INHIBITED = 0x10
STATUS_AUX_OBF = 0x20
STATUS_TIMEOUT = 0x40

CTR_KBD_INT = 0x01
CTR_AUX_INT = 0x02
CTR_SYS = 0x04
CTR_KBD_DISABLE = 0x10
CTR_AUX_DISABLE = 0x20
CTR_XLATE = 0x40
#: Command byte after power-on, as a PC BIOS leaves it: port-1 IRQ on, POST passed, translating.
DEFAULT_CTR = CTR_KBD_INT | CTR_SYS | CTR_XLATE

OUTPORT_RESET = 0x01  # active low: writing 0 resets the CPU
OUTPORT_A20 = 0x02
DEFAULT_OUTPORT = 0xCF
INPUT_PORT = 0x80  # keyboard not inhibited

CMD_READ_RAM = 0x20
CMD_WRITE_RAM = 0x60
CMD_AUX_DISABLE = 0xA7
CMD_AUX_ENABLE = 0xA8
CMD_AUX_TEST = 0xA9
CMD_SELF_TEST = 0xAA
CMD_KBD_TEST = 0xAB
CMD_KBD_DISABLE = 0xAD
CMD_KBD_ENABLE = 0xAE
CMD_READ_INPUT_PORT = 0xC0
CMD_READ_OUTPUT_PORT = 0xD0
CMD_WRITE_OUTPUT_PORT = 0xD1
CMD_WRITE_KBD_OUTPUT = 0xD2
CMD_WRITE_AUX_OUTPUT = 0xD3
CMD_WRITE_AUX = 0xD4
CMD_A20_DISABLE = 0xDD
CMD_A20_ENABLE = 0xDF
CMD_READ_TEST_INPUTS = 0xE0
CMD_PULSE_FIRST = 0xF0

SELF_TEST_OK = 0x55
INTERFACE_TEST_OK = 0x00

KBD_SET_LEDS = 0xED
KBD_ECHO = 0xEE
KBD_SCANCODE_SET = 0xF0
KBD_IDENTIFY = 0xF2
KBD_TYPEMATIC = 0xF3
KBD_ENABLE = 0xF4
KBD_DISABLE = 0xF5
KBD_DEFAULTS = 0xF6
KBD_RESEND = 0xFE
KBD_RESET = 0xFF
KBD_ACK = 0xFA
KBD_NAK = 0xFE
KBD_BAT_OK = 0xAA
KBD_ID = (0xAB, 0x83)  # MF2 keyboard
SUPPORTED_SCANCODE_SETS = (1, 2)

BREAK_PREFIX = 0xF0

#: The controller's set 2 -> set 1 translation (index: set-2 byte). Codes from 0x80 pass
#: unchanged except 0x83 (F7) and 0x84 (Alt+SysRq), so prefixes and replies survive it.
SET2_TO_SET1 = bytes(
    [
        0xFF, 0x43, 0x41, 0x3F, 0x3D, 0x3B, 0x3C, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3E, 0x0F, 0x29, 0x59,
        0x65, 0x38, 0x2A, 0x70, 0x1D, 0x10, 0x02, 0x5A, 0x66, 0x71, 0x2C, 0x1F, 0x1E, 0x11, 0x03, 0x5B,
        0x67, 0x2E, 0x2D, 0x20, 0x12, 0x05, 0x04, 0x5C, 0x68, 0x39, 0x2F, 0x21, 0x14, 0x13, 0x06, 0x5D,
        0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5E, 0x6A, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5F,
        0x6B, 0x33, 0x25, 0x17, 0x18, 0x0B, 0x0A, 0x60, 0x6C, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0C, 0x61,
        0x6D, 0x73, 0x28, 0x74, 0x1A, 0x0D, 0x62, 0x6E, 0x3A, 0x36, 0x1C, 0x1B, 0x75, 0x2B, 0x63, 0x76,
        0x55, 0x56, 0x77, 0x78, 0x79, 0x7A, 0x0E, 0x7B, 0x7C, 0x4F, 0x7D, 0x4B, 0x47, 0x7E, 0x7F, 0x6F,
        0x52, 0x53, 0x50, 0x4C, 0x4D, 0x48, 0x01, 0x45, 0x57, 0x4E, 0x51, 0x4A, 0x37, 0x49, 0x46, 0x54,
    ]
    + [0x41 if b == 0x83 else 0x54 if b == 0x84 else b for b in range(0x80, 0x100)]
)  # fmt: skip


def set2_to_set1(codes: bytes) -> bytes:
    """Translate a whole set-2 byte sequence to set 1, as the controller does byte by byte."""
    out = bytearray()
    release = False
    for b in codes:
        if b == BREAK_PREFIX:
            release = True
            continue
        out.append(SET2_TO_SET1[b] | (0x80 if release else 0))
        release = False
    return bytes(out)


class I8042(ByteRegisters):
    """The controller + keyboard state machine; all I/O goes through the callbacks.

    irq(level)      -- port-1 interrupt output; wire to KVM_IRQ_LINE for layout.I8042_IRQ.
    on_reset()      -- the guest pulsed the CPU reset line (0xFE, 0xD1 with bit 0 clear). Runs on
                       the vCPU thread inside a port write: only *request* the reset there.
    aux_irq(level)  -- optional aux-port interrupt (IRQ layout.I8042_AUX_IRQ), see above.
    Register on the port bus: `bus.register(layout.I8042_DATA, I8042.PORT_COUNT, i8042)`.
    The host types with `key_event(set-2 bytes)`.
    """

    PORT_COUNT = STATUS_COMMAND + 1

    def __init__(
        self,
        irq: Callable[[bool], None],
        on_reset: Callable[[], None],
        aux_irq: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__()
        self._irq = irq
        self._aux_irq = aux_irq
        self._on_reset = on_reset
        self._ctrl_out: deque[tuple[int, int]] = deque()  # (byte, extra status bits)
        self._kbd_replies: deque[int] = deque()
        self._kbd_keys: deque[int] = deque()
        self._irq_level = False
        self._aux_level = False
        self._power_on()

    def _power_on(self) -> None:
        self._ram = bytearray(32)
        self._ram[0] = DEFAULT_CTR
        self._sys = True
        self._ctr_written = False
        self._a2 = False
        self._outport = DEFAULT_OUTPORT
        self._pending_cmd: int | None = None
        self._ob = 0
        self._ob_flags = 0  # STATUS_AUX_OBF / STATUS_TIMEOUT of the byte in the buffer
        self._obf = False
        self._xlat_release = False
        self._ctrl_out.clear()
        self._kbd_replies.clear()
        self._kbd_keys.clear()
        self._kbd_pending_cmd: int | None = None
        self._kbd_last_sent = KBD_ACK
        self._kbd_defaults()

    def _kbd_defaults(self) -> None:
        self._kbd_scanning = True
        self._kbd_set = 2
        self._leds = 0
        self._typematic = 0x2B

    def reset(self) -> None:
        """Machine reset: controller and keyboard to power-on state, queues emptied."""
        with self._lock:
            self._power_on()
            self._update_irq()

    # --- host side ---

    def key_event(self, scancodes_set2: bytes) -> bool:
        """Queue one key's set-2 bytes (make, or F0-prefixed break) for the guest.

        All or nothing: returns False, queuing nothing, when the keyboard is not scanning
        (the guest disabled it) or the queue lacks room for the whole sequence.
        """
        with self._lock:
            if not self._kbd_scanning:
                return False
            codes = set2_to_set1(scancodes_set2) if self._kbd_set == 1 else scancodes_set2
            if len(self._kbd_keys) + len(codes) > KEY_QUEUE_SIZE:
                return False
            self._kbd_keys.extend(codes)
            self._update_irq()
            return True

    @property
    def command_byte(self) -> int:
        with self._lock:
            return self._ram[0]

    @property
    def keyboard_irq_enabled_by_guest(self) -> bool:
        """The guest wrote the command byte with the keyboard interrupt on: an OS driver owns
        the keyboard (until then firmware may take its input elsewhere, e.g. a serial console)."""
        with self._lock:
            return self._ctr_written and bool(self._ram[0] & CTR_KBD_INT)

    @property
    def leds(self) -> int:
        """Keyboard LEDs as last set by the guest: bit 0 scroll, 1 num, 2 caps lock."""
        with self._lock:
            return self._leds

    @property
    def scancode_set(self) -> int:
        with self._lock:
            return self._kbd_set

    @property
    def irq_level(self) -> bool:
        with self._lock:
            return self._irq_level

    # --- guest side ---

    def _read_byte(self, offset: int) -> int:
        if offset == DATA:
            value = self._ob
            if self._obf:
                self._obf = False
                self._set_lines()  # drop the line before the next byte loads: a fresh edge
                self._update_irq()
            return value
        if offset == STATUS_COMMAND:
            return self._status()
        return 0xFF

    def _write_byte(self, offset: int, value: int) -> None:
        if offset == DATA:
            self._a2 = False
            self._write_data(value)
        elif offset == STATUS_COMMAND:
            self._a2 = True
            self._command(value)
        self._update_irq()

    def _status(self) -> int:
        status = STATUS_NOT_INHIBITED
        if self._obf:
            status |= STATUS_OBF | self._ob_flags
        if self._sys:
            status |= STATUS_SYS
        if self._a2:
            status |= STATUS_A2
        return status

    def _reply(self, value: int, flags: int = 0) -> None:
        if len(self._ctrl_out) < CONTROLLER_QUEUE_SIZE:
            self._ctrl_out.append((value, flags))

    def _command(self, cmd: int) -> None:
        self._pending_cmd = None
        ctr = self._ram[0]
        if CMD_READ_RAM <= cmd < CMD_READ_RAM + 0x20:
            self._reply(self._ram[cmd - CMD_READ_RAM])
        elif CMD_WRITE_RAM <= cmd < CMD_WRITE_RAM + 0x20 or cmd in (
            CMD_WRITE_OUTPUT_PORT,
            CMD_WRITE_KBD_OUTPUT,
            CMD_WRITE_AUX_OUTPUT,
            CMD_WRITE_AUX,
        ):
            self._pending_cmd = cmd
        elif cmd == CMD_AUX_DISABLE:
            self._ram[0] = ctr | CTR_AUX_DISABLE
        elif cmd == CMD_AUX_ENABLE:
            self._ram[0] = ctr & ~CTR_AUX_DISABLE
        elif cmd in (CMD_AUX_TEST, CMD_KBD_TEST):
            self._reply(INTERFACE_TEST_OK)
        elif cmd == CMD_SELF_TEST:
            self._sys = True
            self._reply(SELF_TEST_OK)
        elif cmd == CMD_KBD_DISABLE:
            self._ram[0] = ctr | CTR_KBD_DISABLE
        elif cmd == CMD_KBD_ENABLE:
            self._ram[0] = ctr & ~CTR_KBD_DISABLE
        elif cmd == CMD_READ_INPUT_PORT:
            self._reply(INPUT_PORT)
        elif cmd == CMD_READ_OUTPUT_PORT:
            self._reply(self._outport)
        elif cmd == CMD_A20_DISABLE:
            self._outport &= ~OUTPORT_A20
        elif cmd == CMD_A20_ENABLE:
            self._outport |= OUTPORT_A20
        elif cmd == CMD_READ_TEST_INPUTS:
            self._reply(0x00)
        elif cmd >= CMD_PULSE_FIRST and not cmd & OUTPORT_RESET:
            self._on_reset()

    def _write_data(self, value: int) -> None:
        cmd, self._pending_cmd = self._pending_cmd, None
        if cmd is None:
            self._ram[0] &= ~CTR_KBD_DISABLE  # talking to the keyboard re-enables its port
            self._keyboard_write(value)
        elif CMD_WRITE_RAM <= cmd < CMD_WRITE_RAM + 0x20:
            self._ram[cmd - CMD_WRITE_RAM] = value
            if cmd == CMD_WRITE_RAM:
                self._sys = bool(value & CTR_SYS)
                self._ctr_written = True
        elif cmd == CMD_WRITE_OUTPUT_PORT:
            self._outport = value
            if not value & OUTPORT_RESET:
                self._on_reset()
        elif cmd == CMD_WRITE_KBD_OUTPUT:
            self._reply(value)
        elif cmd == CMD_WRITE_AUX_OUTPUT:
            self._reply(value, STATUS_AUX_OBF)
        elif cmd == CMD_WRITE_AUX:
            self._reply(KBD_NAK, STATUS_AUX_OBF | STATUS_TIMEOUT)  # no device on the aux port

    def _keyboard_write(self, value: int) -> None:
        self._kbd_replies.clear()
        cmd = self._kbd_pending_cmd
        self._kbd_pending_cmd = None
        if cmd is not None and value < 0x80:  # a byte >= 0x80 is a new command instead
            self._keyboard_parameter(cmd, value)
            return
        replies: tuple[int, ...] = (KBD_ACK,)
        if value in (KBD_SET_LEDS, KBD_TYPEMATIC, KBD_SCANCODE_SET):
            self._kbd_pending_cmd = value
        elif value == KBD_ECHO:
            replies = (KBD_ECHO,)
        elif value == KBD_IDENTIFY:
            replies = (KBD_ACK, *KBD_ID)
        elif value == KBD_ENABLE:
            self._kbd_scanning = True
        elif value in (KBD_DISABLE, KBD_DEFAULTS):
            self._kbd_defaults()
            self._kbd_scanning = value == KBD_DEFAULTS
            self._kbd_keys.clear()
        elif value == KBD_RESEND:
            replies = (self._kbd_last_sent,)
        elif value == KBD_RESET:
            self._kbd_defaults()
            self._kbd_keys.clear()
            replies = (KBD_ACK, KBD_BAT_OK)
        elif not 0xF7 <= value <= 0xFD:  # set-3 key-type commands: acknowledged, no effect
            replies = (KBD_NAK,)
        self._kbd_replies.extend(replies)

    def _keyboard_parameter(self, cmd: int, value: int) -> None:
        reply = [KBD_ACK]
        if cmd == KBD_SET_LEDS:
            self._leds = value & 0x07
        elif cmd == KBD_TYPEMATIC:
            self._typematic = value
        elif value == 0:
            reply.append(self._kbd_set)
        elif value in SUPPORTED_SCANCODE_SETS:
            self._kbd_set = value
        else:
            reply = [KBD_NAK]
        self._kbd_replies.extend(reply)

    def _next_keyboard_byte(self) -> int | None:
        """Move keyboard bytes toward the buffer, translating; None when nothing is ready."""
        while self._kbd_replies or self._kbd_keys:
            raw = (self._kbd_replies or self._kbd_keys).popleft()
            self._kbd_last_sent = raw
            if not self._ram[0] & CTR_XLATE:
                return raw
            if raw == BREAK_PREFIX:
                self._xlat_release = True
                continue
            value = SET2_TO_SET1[raw] | (0x80 if self._xlat_release else 0)
            self._xlat_release = False
            return value
        return None

    def _fill_output_buffer(self) -> None:
        if self._obf:
            return
        if self._ctrl_out:
            self._ob, self._ob_flags = self._ctrl_out.popleft()
            self._obf = True
        elif not self._ram[0] & CTR_KBD_DISABLE:
            value = self._next_keyboard_byte()
            if value is not None:
                self._ob, self._ob_flags, self._obf = value, 0, True

    def _update_irq(self) -> None:
        self._fill_output_buffer()
        self._set_lines()

    def _set_lines(self) -> None:
        ctr = self._ram[0]
        aux_byte = bool(self._ob_flags & STATUS_AUX_OBF)
        level = self._obf and not aux_byte and bool(ctr & CTR_KBD_INT)
        aux_level = self._obf and aux_byte and bool(ctr & CTR_AUX_INT)
        if level != self._irq_level:
            self._irq_level = level
            self._irq(level)
        if aux_level != self._aux_level:
            self._aux_level = aux_level
            if self._aux_irq is not None:
                self._aux_irq(aux_level)
