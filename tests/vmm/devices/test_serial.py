"""The 8250/16550A UART model driven register by register, as Linux and simple guests do."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmgui.vmm.devices import serial as s
from vmgui.vmm.devices.serial import RX_FIFO_SIZE, Serial


class Uart:
    """A Serial with its callbacks recorded, and byte-wide register helpers."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.irqs: list[bool] = []
        self.rx_empty = 0
        self.dev = Serial(self.out.append, self.irqs.append, self._on_rx_empty)

    def _on_rx_empty(self) -> None:
        self.rx_empty += 1

    def rd(self, reg: int) -> int:
        return self.dev.read(reg, 1)

    def wr(self, reg: int, value: int) -> None:
        self.dev.write(reg, 1, value)

    @property
    def sent(self) -> bytes:
        return b"".join(self.out)


@pytest.fixture
def uart() -> Uart:
    return Uart()


def test_power_on_registers(uart: Uart) -> None:
    assert uart.rd(s.IER_DLM) == 0
    assert uart.rd(s.IIR_FCR) == s.IIR_NO_INT
    assert uart.rd(s.LCR) == 0x03
    assert uart.rd(s.MCR) == s.MCR_OUT2
    assert uart.rd(s.LSR) == s.LSR_THRE | s.LSR_TEMT
    assert uart.rd(s.MSR) == s.MSR_DCD | s.MSR_DSR | s.MSR_CTS
    assert uart.rd(s.SCR) == 0
    assert uart.irqs == []


def test_divisor_latch_is_behind_dlab(uart: Uart) -> None:
    uart.wr(s.LCR, 0x83)
    assert (uart.rd(0), uart.rd(1)) == (12, 0)  # 9600 baud at power-on
    uart.wr(0, 0x01)
    uart.wr(1, 0x00)  # 115200 baud, as Linux programs it
    uart.wr(0, 0x34)
    uart.wr(1, 0x12)
    assert (uart.rd(0), uart.rd(1)) == (0x34, 0x12)
    assert uart.dev.read(0, 2) == 0x1234
    assert uart.sent == b"" and uart.rd(s.LCR) == 0x83  # DLL writes never transmit
    uart.wr(s.LCR, 0x03)
    assert uart.rd(1) == 0  # IER is back
    uart.wr(0, ord("x"))
    assert uart.sent == b"x"
    uart.wr(s.LCR, 0x83)
    assert uart.rd(0) == 0x34  # the divisor survived


def test_scratch_register_and_ignored_writes(uart: Uart) -> None:
    for value in (0x00, 0x55, 0xAA, 0xFF):
        uart.wr(s.SCR, value)
        assert uart.rd(s.SCR) == value
    uart.wr(s.LSR, 0x00)
    uart.wr(s.MSR, 0x00)
    assert uart.rd(s.LSR) == s.LSR_THRE | s.LSR_TEMT
    assert uart.rd(s.MSR) == s.MSR_NULL_MODEM


def test_polling_guest_transmits_and_receives(uart: Uart) -> None:
    message = b"hello, polling world\r\n"
    for byte in message:
        while not uart.rd(s.LSR) & s.LSR_THRE:
            pass
        uart.wr(0, byte)
    assert uart.sent == message
    assert uart.out == [bytes((b,)) for b in message]  # one callback per THR write
    assert uart.dev.enqueue_input(b"ok") == 2
    got = bytearray()
    while uart.rd(s.LSR) & s.LSR_DR:
        got.append(uart.rd(0))
    assert bytes(got) == b"ok"
    assert uart.irqs == []  # IER was never enabled
    assert uart.rx_empty == 1


def test_linux_autoconfig_identifies_a_16550a(uart: Uart) -> None:
    """The register dance of autoconfig() in Linux's 8250_port.c, step by step."""
    # Scratch test on IER.
    saved_ier = uart.rd(s.IER_DLM)
    uart.wr(s.IER_DLM, 0)
    assert uart.rd(s.IER_DLM) & 0x0F == 0
    uart.wr(s.IER_DLM, 0x0F)
    assert uart.rd(s.IER_DLM) & 0x0F == 0x0F
    uart.wr(s.IER_DLM, saved_ier)
    # Loopback test: RTS | OUT2 in loop mode must read back as CTS | DCD.
    saved_mcr, saved_lcr = uart.rd(s.MCR), uart.rd(s.LCR)
    uart.wr(s.MCR, s.MCR_LOOP | 0x0A)
    assert uart.rd(s.MSR) & 0xF0 == 0x90
    uart.wr(s.MCR, saved_mcr)
    # No EFR: in the 0xBF configuration mode offset 2 is still IIR/FCR.
    uart.wr(s.LCR, 0xBF)
    uart.wr(s.IIR_FCR, 0)
    uart.wr(s.LCR, 0)
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO)
    assert uart.rd(s.IIR_FCR) >> 6 == 3  # -> autoconfig_16550a
    uart.wr(s.LCR, 0xBF)
    assert uart.rd(s.IIR_FCR) != 0  # EFR would read 0: not a 16650
    # Not a 16750: IIR bit 5 never follows FCR bit 5.
    uart.wr(s.LCR, 0)
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO | 0x20)
    status1 = uart.rd(s.IIR_FCR) >> 5
    uart.wr(s.LCR, 0x80)
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO | 0x20)
    status2 = uart.rd(s.IIR_FCR) >> 5
    assert (status1, status2) == (6, 6)
    # Not an XScale: IER bit 6 (UUE) does not stick.
    uart.wr(s.LCR, 0)
    uart.wr(s.IER_DLM, 0x40)
    assert not uart.rd(s.IER_DLM) & 0x40
    uart.wr(s.LCR, saved_lcr)
    assert uart.rd(s.LSR) != 0xFF  # serial8250_startup's LSR safety check
    assert uart.sent == b""


def test_thre_interrupt_is_reasserted_as_linux_expects(uart: Uart) -> None:
    """serial8250_do_startup's UART_BUG_THRE and UART_BUG_TXEN probes must both pass."""
    uart.wr(s.IER_DLM, s.IER_THRI)
    assert uart.irqs == [True]
    iir1 = uart.rd(s.IIR_FCR)
    assert iir1 & 0x0F == s.IIR_THRI
    assert uart.irqs == [True, False]  # reading IIR acknowledged the THRE interrupt
    assert uart.rd(s.IIR_FCR) & s.IIR_NO_INT
    uart.wr(s.IER_DLM, 0)
    uart.wr(s.IER_DLM, s.IER_THRI)
    iir = uart.rd(s.IIR_FCR)
    assert not iir & s.IIR_NO_INT  # re-asserted: no UART_BUG_THRE
    uart.wr(s.IER_DLM, 0)
    # TXEN probe: enable THRI, then LSR and IIR must show the interrupt.
    uart.wr(s.IER_DLM, s.IER_THRI)
    lsr, iir = uart.rd(s.LSR), uart.rd(s.IIR_FCR)
    assert lsr & s.LSR_TEMT and not iir & s.IIR_NO_INT
    uart.wr(s.IER_DLM, 0)
    assert uart.irqs[-1] is False


def test_rewriting_ier_with_thri_already_set_does_not_rearm(uart: Uart) -> None:
    uart.wr(s.IER_DLM, s.IER_THRI)
    uart.rd(s.IIR_FCR)
    uart.wr(s.IER_DLM, s.IER_THRI | s.IER_RDI)
    assert uart.rd(s.IIR_FCR) == s.IIR_NO_INT
    assert uart.irqs == [True, False]


def test_interrupt_driven_transmit_like_serial8250(uart: Uart) -> None:
    """start_tx sets THRI; each IRQ the handler reads IIR, writes up to 16 bytes, stops when done."""
    message = b"The quick brown fox jumps over the lazy dog. " * 2
    pending = bytearray(message)
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO | s.FCR_CLEAR_RX | s.FCR_CLEAR_TX | 0x80)
    uart.wr(s.MCR, s.MCR_OUT2 | s.MCR_RTS | s.MCR_DTR)
    uart.wr(s.IER_DLM, s.IER_RDI | s.IER_RLSI | s.IER_THRI)
    interrupts = 0
    while uart.dev.irq_level:
        interrupts += 1
        assert interrupts < 100
        iir = uart.rd(s.IIR_FCR)
        assert iir & 0x0F == s.IIR_THRI
        assert uart.rd(s.LSR) & s.LSR_THRE
        for _ in range(16):
            if not pending:
                break
            uart.wr(0, pending.pop(0))
        if not pending:
            uart.wr(s.IER_DLM, s.IER_RDI | s.IER_RLSI)  # __stop_tx
    assert uart.sent == message
    assert interrupts == -(-len(message) // 16)  # the last batch also stops transmission
    # Each THR write gave the interrupt controller a fresh edge.
    assert all(a != b for a, b in zip(uart.irqs, uart.irqs[1:], strict=False))
    assert uart.irqs[-1] is False


def test_receive_interrupt_with_fifo_off(uart: Uart) -> None:
    uart.wr(s.IER_DLM, s.IER_RDI)
    assert uart.irqs == []
    assert uart.dev.enqueue_input(b"abc") == 3
    assert uart.irqs == [True]
    assert uart.rd(s.IIR_FCR) == s.IIR_RDI
    assert uart.rd(s.LSR) & s.LSR_DR
    assert bytes(uart.rd(0) for _ in range(3)) == b"abc"
    assert uart.irqs == [True, False]
    assert not uart.rd(s.LSR) & s.LSR_DR
    assert uart.rd(s.IIR_FCR) == s.IIR_NO_INT
    assert uart.rx_empty == 1
    assert uart.rd(0) == 0  # reading an empty RBR is harmless
    assert uart.rx_empty == 1


@pytest.mark.parametrize(("trigger_bits", "level"), [(0x00, 1), (0x40, 4), (0x80, 8), (0xC0, 14)])
def test_receive_trigger_level_and_timeout(uart: Uart, trigger_bits: int, level: int) -> None:
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO | trigger_bits)
    uart.wr(s.IER_DLM, s.IER_RDI)
    if level > 1:
        uart.dev.enqueue_input(b"x" * (level - 1))
        assert uart.rd(s.IIR_FCR) == s.IIR_FIFO_ENABLED | s.IIR_RX_TIMEOUT
    uart.dev.enqueue_input(b"y")
    assert uart.rd(s.IIR_FCR) == s.IIR_FIFO_ENABLED | s.IIR_RDI
    assert uart.irqs == [True]


def test_rx_fifo_is_bounded_and_nothing_is_lost(uart: Uart) -> None:
    data = bytes(range(200))
    taken = uart.dev.enqueue_input(data)
    assert taken == RX_FIFO_SIZE
    assert uart.dev.rx_free == 0
    assert uart.dev.enqueue_input(data[taken:]) == 0
    assert uart.rd(0) == 0
    assert uart.dev.rx_free == 1
    assert uart.dev.enqueue_input(data[taken:]) == 1
    received = bytearray([0])
    offset = taken + 1
    while len(received) < len(data):
        while uart.rd(s.LSR) & s.LSR_DR:
            received.append(uart.rd(0))
        offset += uart.dev.enqueue_input(data[offset:])
    assert bytes(received) == data
    assert uart.rx_empty >= 3


def test_fifo_clear_and_toggle(uart: Uart) -> None:
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO)
    uart.dev.enqueue_input(b"abc")
    notified = uart.rx_empty
    uart.wr(s.IIR_FCR, s.FCR_ENABLE_FIFO | s.FCR_CLEAR_RX)
    assert not uart.rd(s.LSR) & s.LSR_DR
    assert uart.rx_empty == notified + 1  # the host is told it may feed input again
    uart.dev.enqueue_input(b"abc")
    uart.wr(s.IIR_FCR, 0)  # turning the FIFOs off resets them
    assert not uart.rd(s.LSR) & s.LSR_DR
    assert uart.rd(s.IIR_FCR) == s.IIR_NO_INT


def test_loopback_routes_thr_to_rbr_and_refuses_host_input(uart: Uart) -> None:
    uart.wr(s.MCR, s.MCR_LOOP)
    assert uart.dev.enqueue_input(b"host") == 0
    assert uart.dev.rx_free == 0
    uart.wr(0, 0x5A)
    assert uart.sent == b""
    assert uart.rd(s.LSR) & s.LSR_DR
    assert uart.rd(0) == 0x5A
    assert uart.rx_empty == 0  # loopback data is not host input
    uart.wr(s.MCR, 0)
    assert uart.rx_empty == 1  # leaving loopback: the host may retry its input
    assert uart.dev.enqueue_input(b"host") == 4


def test_loopback_modem_lines_and_deltas(uart: Uart) -> None:
    uart.wr(s.MCR, s.MCR_LOOP)
    # Leaving the null-modem lines (DCD, DSR, CTS) drops all three.
    assert uart.rd(s.MSR) == s.MSR_DCTS | s.MSR_DDSR | s.MSR_DDCD
    assert uart.rd(s.MSR) == 0  # deltas clear on read
    uart.wr(s.MCR, s.MCR_LOOP | s.MCR_DTR)
    assert uart.rd(s.MSR) == s.MSR_DSR | s.MSR_DDSR
    uart.wr(s.MCR, s.MCR_LOOP | s.MCR_DTR | s.MCR_OUT1)
    assert uart.rd(s.MSR) == s.MSR_DSR | s.MSR_RI  # RI rising edge is not a delta
    uart.wr(s.MCR, s.MCR_LOOP | s.MCR_DTR)
    assert uart.rd(s.MSR) == s.MSR_DSR | s.MSR_TERI  # trailing edge of RI
    uart.wr(s.MCR, 0xFF)
    assert uart.rd(s.MCR) == s.MCR_MASK


def test_interrupt_priority(uart: Uart) -> None:
    uart.wr(s.MCR, s.MCR_LOOP)
    uart.rd(s.MSR)
    for i in range(RX_FIFO_SIZE + 1):  # one byte too many: overrun
        uart.wr(0, i)
    uart.wr(s.MCR, s.MCR_LOOP | s.MCR_RTS)  # a modem-status delta (CTS)
    uart.wr(s.IER_DLM, s.IER_MASK)
    assert uart.irqs == [True]
    assert uart.rd(s.IIR_FCR) == s.IIR_RLSI
    lsr = uart.rd(s.LSR)
    assert lsr & s.LSR_OE and lsr & s.LSR_DR
    assert not uart.rd(s.LSR) & s.LSR_OE  # OE clears on read
    assert uart.rd(s.IIR_FCR) == s.IIR_RDI
    for _ in range(RX_FIFO_SIZE):
        uart.rd(0)
    assert uart.rd(s.IIR_FCR) == s.IIR_THRI  # reading it acknowledges it
    assert uart.rd(s.IIR_FCR) == s.IIR_MSI
    assert uart.rd(s.MSR) & s.MSR_DCTS
    assert uart.rd(s.IIR_FCR) == s.IIR_NO_INT
    assert uart.irqs == [True, False]


def test_line_status_interrupt_needs_its_enable(uart: Uart) -> None:
    uart.wr(s.MCR, s.MCR_LOOP)
    for i in range(RX_FIFO_SIZE + 1):
        uart.wr(0, i)
    uart.wr(s.IER_DLM, s.IER_THRI)
    assert uart.rd(s.IIR_FCR) == s.IIR_THRI


def test_wide_accesses_split_into_bytes(uart: Uart) -> None:
    uart.wr(s.SCR, 0x42)
    assert uart.dev.read(s.SCR, 2) == 0xFF42  # the byte past the UART floats high
    assert uart.dev.read(s.SCR, 4) == 0xFFFFFF42
    uart.dev.write(s.SCR, 2, 0xABCD)
    assert uart.rd(s.SCR) == 0xCD
    uart.dev.write(s.LCR, 2, 0x1F83)  # LCR = 0x83, MCR = 0x1F
    assert uart.rd(s.MCR) == 0x1F and uart.rd(s.LCR) == 0x83
    assert uart.dev.read(8, 1) == 0xFF and uart.dev.read(-1, 1) == 0xFF
    uart.dev.write(8, 1, 0)
    assert uart.dev.read(0, 0) == 0


def test_reset_restores_power_on_state(uart: Uart) -> None:
    uart.wr(s.IER_DLM, s.IER_THRI | s.IER_RDI)
    uart.wr(s.LCR, 0x1B)
    uart.dev.enqueue_input(b"zz")
    assert uart.dev.irq_level
    uart.dev.reset()
    assert not uart.dev.irq_level and uart.irqs[-1] is False
    assert uart.rd(s.LCR) == 0x03 and uart.rd(s.IER_DLM) == 0
    assert uart.rd(s.LSR) == s.LSR_THRE | s.LSR_TEMT


def test_callbacks_may_reenter_the_device() -> None:
    """The host feeds more input from on_rx_empty, as the VMM's reader would."""
    backlog = bytearray(b"0123456789" * 20)
    got = bytearray()

    def refill() -> None:
        del backlog[: dev.enqueue_input(bytes(backlog))]

    dev = Serial(lambda _b: None, lambda _l: None, refill)
    refill()
    while dev.read(s.LSR, 1) & s.LSR_DR:
        got.append(dev.read(0, 1))
    assert bytes(got) == b"0123456789" * 20


accesses = st.lists(
    st.tuples(
        st.sampled_from(["r", "w", "in"]),
        st.integers(0, 8),
        st.sampled_from([1, 1, 1, 2, 4]),
        st.integers(0, 0xFFFFFFFF),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(accesses)
def test_random_register_sequences_keep_invariants(ops: list[tuple[str, int, int, int]]) -> None:
    uart = Uart()
    for kind, offset, size, value in ops:
        if kind == "r":
            result = uart.dev.read(offset, size)
            assert 0 <= result < 1 << (8 * size)
        elif kind == "w":
            uart.dev.write(offset, size, value & ((1 << (8 * size)) - 1))
        else:
            free = uart.dev.rx_free
            assert uart.dev.enqueue_input(bytes([value & 0xFF]) * size) == min(size, free)
        assert 0 <= uart.dev.rx_free <= RX_FIFO_SIZE
        assert uart.rd(s.LSR) & (s.LSR_THRE | s.LSR_TEMT) == s.LSR_THRE | s.LSR_TEMT
        # The line only ever toggles, and its last reported level is the device's.
        assert all(a != b for a, b in zip(uart.irqs, uart.irqs[1:], strict=False))
        assert (uart.irqs[-1] if uart.irqs else False) == uart.dev.irq_level
    assert all(len(chunk) == 1 for chunk in uart.out)


def test_concurrent_host_input_and_guest_reads() -> None:
    """A host thread feeds input while the "vCPU" thread reads: every byte arrives once, in order."""
    data = bytes(range(256)) * 12
    got = bytearray()
    space = threading.Event()
    dev = Serial(lambda _b: None, lambda _l: None, space.set)

    def feeder() -> None:
        sent = 0
        while sent < len(data):
            space.clear()
            sent += dev.enqueue_input(data[sent : sent + 100])
            if sent < len(data):
                space.wait(1)

    thread = threading.Thread(target=feeder)
    thread.start()
    while len(got) < len(data):
        if dev.read(s.LSR, 1) & s.LSR_DR:
            got.append(dev.read(0, 1))
    thread.join()
    assert bytes(got) == data
