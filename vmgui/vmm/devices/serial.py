"""16550A-compatible 8250 UART (COM1: layout.SERIAL_COM1, IRQ layout.SERIAL_COM1_IRQ).

Guest-visible contract (offsets from the base port; register it with `Serial.PORT_COUNT`):

  0  RBR (read) / THR (write); DLL while LCR.DLAB is set
  1  IER (bits 0-3); DLM while LCR.DLAB is set
  2  IIR (read) / FCR (write)
  3  LCR (bit 7 = DLAB)
  4  MCR (bits 0-4; bit 4 = loopback)
  5  LSR (read; writes ignored, factory-test register on real parts)
  6  MSR (read; delta bits clear on read; writes ignored)
  7  SCR (scratch)

- Transmission is instantaneous: a THR write hands the byte to `out` at once, so LSR always has
  THRE and TEMT set and the "THR empty" interrupt re-arms right after every THR write.
- IIR reports the highest-priority enabled cause: line status (OE/BI) > received data (0x04 at
  or above the FCR trigger level, else character timeout 0x0C, as if the timeout had elapsed) >
  THR empty > modem status. IIR bits 6-7 are set while FCR enables the FIFOs; bit 5 (16750
  64-byte FIFO) is never set, so Linux's autoconfig identifies a plain 16550A.
- THR-empty interrupt: pending when IER.ETBEI goes 0->1 with the THR empty, and after each THR
  write; cleared by reading IIR when it is the reported cause, by writing THR, or by clearing
  ETBEI. Linux's serial8250 relies on exactly this (its UART_BUG_THRE/TXEN probes).
- Host input is queued with `enqueue_input`, which accepts at most the free space of the RX
  FIFO (`RX_FIFO_SIZE`) and returns how many bytes it took; the caller keeps the rest and
  retries when `on_rx_empty` fires (the guest drained or cleared the FIFO, left loopback, or
  the machine was reset). Nothing is dropped, except on a guest-requested FIFO clear. In loopback mode the RX line is disconnected, so host input is
  refused (0 accepted) and THR bytes go to the RX FIFO instead (overrun sets LSR.OE).
- MSR reports DCD, DSR and CTS asserted (a null-modem cable); in loopback it mirrors MCR
  (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD) and sets the delta bits on changes.
- `irq(level)` is called on every change of the interrupt output (active = a cause is pending);
  it is not gated by MCR.OUT2, like QEMU. Baud rate, parity and stop bits are stored only.
- Wider accesses are split into byte cycles (see byte_registers).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from vmgui.vmm.devices.byte_registers import ByteRegisters

#: Bytes the receive FIFO holds; `enqueue_input` never accepts more than the free space.
RX_FIFO_SIZE = 64

# Register offsets.
RBR_THR_DLL = 0
IER_DLM = 1
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

IER_RDI = 0x01  # received data available
IER_THRI = 0x02  # transmitter holding register empty
IER_RLSI = 0x04  # receiver line status
IER_MSI = 0x08  # modem status
IER_MASK = 0x0F

IIR_NO_INT = 0x01
IIR_MSI = 0x00
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_RLSI = 0x06
IIR_RX_TIMEOUT = 0x0C
IIR_FIFO_ENABLED = 0xC0

FCR_ENABLE_FIFO = 0x01
FCR_CLEAR_RX = 0x02
FCR_CLEAR_TX = 0x04
FCR_DMA_SELECT = 0x08
FCR_TRIGGER_MASK = 0xC0
#: RX trigger level in bytes for FCR bits 6-7 (16550A).
RX_TRIGGER_LEVELS = (1, 4, 8, 14)

LCR_DLAB = 0x80

MCR_DTR = 0x01
MCR_RTS = 0x02
MCR_OUT1 = 0x04
MCR_OUT2 = 0x08
MCR_LOOP = 0x10
MCR_MASK = 0x1F

LSR_DR = 0x01
LSR_OE = 0x02
LSR_PE = 0x04
LSR_FE = 0x08
LSR_BI = 0x10
LSR_THRE = 0x20
LSR_TEMT = 0x40
LSR_FIFO_ERROR = 0x80
LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI

MSR_DCTS = 0x01
MSR_DDSR = 0x02
MSR_TERI = 0x04
MSR_DDCD = 0x08
MSR_CTS = 0x10
MSR_DSR = 0x20
MSR_RI = 0x40
MSR_DCD = 0x80
MSR_DELTAS = 0x0F
#: Modem lines seen outside loopback: carrier, data set ready, clear to send.
MSR_NULL_MODEM = MSR_DCD | MSR_DSR | MSR_CTS

DEFAULT_DIVISOR = 12  # 9600 baud from the 1.8432 MHz clock
DEFAULT_LCR = 0x03  # 8N1
DEFAULT_MCR = MCR_OUT2


class Serial(ByteRegisters):
    """The UART state machine; all I/O goes through the callbacks.

    out(data)      -- bytes the guest transmitted (one THR write each).
    irq(level)     -- interrupt output changed; wire to KVM_IRQ_LINE for layout.SERIAL_COM1_IRQ.
    on_rx_empty()  -- optional: the RX FIFO became empty (read, cleared, reset); feed more input.
    Register on the port bus: `bus.register(layout.SERIAL_COM1, Serial.PORT_COUNT, serial)`.
    """

    PORT_COUNT = 8

    def __init__(
        self,
        out: Callable[[bytes], None],
        irq: Callable[[bool], None],
        on_rx_empty: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._out = out
        self._irq = irq
        self._on_rx_empty = on_rx_empty
        self._rx: deque[int] = deque()
        self._irq_level = False
        self._power_on()

    def _power_on(self) -> None:
        self._divisor = DEFAULT_DIVISOR
        self._ier = 0
        self._fcr = 0
        self._lcr = DEFAULT_LCR
        self._mcr = DEFAULT_MCR
        self._scr = 0
        self._lsr_errors = 0
        self._msr_deltas = 0
        self._thr_pending = False
        self._rx.clear()

    def reset(self) -> None:
        """Machine reset: registers to power-on values, RX FIFO emptied, interrupt lowered."""
        with self._lock:
            self._power_on()
            self._update_irq()
            self._rx_space_freed()

    # --- host side ---

    def enqueue_input(self, data: bytes) -> int:
        """Queue bytes the guest will receive; returns how many fit (the caller keeps the rest)."""
        with self._lock:
            if self._mcr & MCR_LOOP:
                return 0
            accepted = min(len(data), RX_FIFO_SIZE - len(self._rx))
            self._rx.extend(data[:accepted])
            if accepted:
                self._update_irq()
            return accepted

    @property
    def rx_free(self) -> int:
        """Free bytes in the RX FIFO (what `enqueue_input` would accept now)."""
        with self._lock:
            return 0 if self._mcr & MCR_LOOP else RX_FIFO_SIZE - len(self._rx)

    @property
    def irq_level(self) -> bool:
        with self._lock:
            return self._irq_level

    # --- guest side ---

    def _read_byte(self, offset: int) -> int:
        dlab = bool(self._lcr & LCR_DLAB)
        if offset == RBR_THR_DLL:
            return self._divisor & 0xFF if dlab else self._read_rbr()
        if offset == IER_DLM:
            return self._divisor >> 8 if dlab else self._ier
        if offset == IIR_FCR:
            return self._read_iir()
        if offset == LCR:
            return self._lcr
        if offset == MCR:
            return self._mcr
        if offset == LSR:
            return self._read_lsr()
        if offset == MSR:
            value = self._modem_lines() | self._msr_deltas
            if self._msr_deltas:
                self._msr_deltas = 0
                self._update_irq()
            return value
        return self._scr

    def _write_byte(self, offset: int, value: int) -> None:
        dlab = bool(self._lcr & LCR_DLAB)
        if offset == RBR_THR_DLL:
            if dlab:
                self._divisor = (self._divisor & 0xFF00) | value
            else:
                self._write_thr(value)
        elif offset == IER_DLM:
            if dlab:
                self._divisor = (self._divisor & 0x00FF) | (value << 8)
            else:
                self._write_ier(value)
        elif offset == IIR_FCR:
            self._write_fcr(value)
        elif offset == LCR:
            self._lcr = value
        elif offset == MCR:
            self._write_mcr(value)
        elif offset == SCR:
            self._scr = value
        # LSR and MSR writes are factory-test only on real parts: ignored.

    def _read_rbr(self) -> int:
        if not self._rx:
            return 0
        value = self._rx.popleft()
        self._update_irq()
        if not self._rx:
            self._rx_space_freed()
        return value

    def _rx_space_freed(self) -> None:
        """Tell the host it can feed input again (FIFO drained or cleared, loopback left)."""
        if self._on_rx_empty is not None and not self._mcr & MCR_LOOP:
            self._on_rx_empty()

    def _read_iir(self) -> int:
        cause = self._pending_cause()
        fifo_bits = IIR_FIFO_ENABLED if self._fcr & FCR_ENABLE_FIFO else 0
        if cause is None:
            return IIR_NO_INT | fifo_bits
        if cause == IIR_THRI:
            # Reading IIR acknowledges a THR-empty interrupt only when it is the one reported.
            self._thr_pending = False
            self._update_irq()
        return cause | fifo_bits

    def _read_lsr(self) -> int:
        value = LSR_THRE | LSR_TEMT | self._lsr_errors
        if self._rx:
            value |= LSR_DR
        if self._lsr_errors:
            self._lsr_errors = 0
            self._update_irq()
        return value

    def _write_thr(self, value: int) -> None:
        # The THR empties at once: drop the interrupt, then re-arm it, which gives the
        # interrupt controller a fresh edge for each byte (as QEMU does).
        self._thr_pending = False
        self._update_irq()
        if self._mcr & MCR_LOOP:
            if len(self._rx) < RX_FIFO_SIZE:
                self._rx.append(value)
            else:
                self._lsr_errors |= LSR_OE
        else:
            self._out(bytes((value,)))
        self._thr_pending = True
        self._update_irq()

    def _write_ier(self, value: int) -> None:
        value &= IER_MASK
        if (value ^ self._ier) & IER_THRI:
            # Rising edge of ETBEI with the THR empty (always, here) raises THRE again.
            self._thr_pending = bool(value & IER_THRI)
        self._ier = value
        self._update_irq()

    def _write_fcr(self, value: int) -> None:
        if (value ^ self._fcr) & FCR_ENABLE_FIFO:
            value |= FCR_CLEAR_RX | FCR_CLEAR_TX  # toggling the FIFOs resets them
        self._fcr = value & (FCR_ENABLE_FIFO | FCR_DMA_SELECT | FCR_TRIGGER_MASK)
        if value & FCR_CLEAR_RX:
            self._rx.clear()
            self._update_irq()
            self._rx_space_freed()
        else:
            self._update_irq()

    def _write_mcr(self, value: int) -> None:
        before = self._modem_lines()
        changed_loop = bool((self._mcr ^ value) & MCR_LOOP)
        self._mcr = value & MCR_MASK
        after = self._modem_lines()
        changed = before ^ after
        if changed & MSR_CTS:
            self._msr_deltas |= MSR_DCTS
        if changed & MSR_DSR:
            self._msr_deltas |= MSR_DDSR
        if changed & MSR_DCD:
            self._msr_deltas |= MSR_DDCD
        if before & MSR_RI and not after & MSR_RI:
            self._msr_deltas |= MSR_TERI
        self._update_irq()
        if changed_loop:
            self._rx_space_freed()  # host input is refused in loopback, accepted outside it

    def _modem_lines(self) -> int:
        if not self._mcr & MCR_LOOP:
            return MSR_NULL_MODEM
        mcr = self._mcr
        return (
            (MSR_DSR if mcr & MCR_DTR else 0)
            | (MSR_CTS if mcr & MCR_RTS else 0)
            | (MSR_RI if mcr & MCR_OUT1 else 0)
            | (MSR_DCD if mcr & MCR_OUT2 else 0)
        )

    def _rx_trigger(self) -> int:
        if not self._fcr & FCR_ENABLE_FIFO:
            return 1
        return RX_TRIGGER_LEVELS[(self._fcr & FCR_TRIGGER_MASK) >> 6]

    def _pending_cause(self) -> int | None:
        ier = self._ier
        if ier & IER_RLSI and self._lsr_errors:
            return IIR_RLSI
        if ier & IER_RDI and self._rx:
            return IIR_RDI if len(self._rx) >= self._rx_trigger() else IIR_RX_TIMEOUT
        if ier & IER_THRI and self._thr_pending:
            return IIR_THRI
        if ier & IER_MSI and self._msr_deltas:
            return IIR_MSI
        return None

    def _update_irq(self) -> None:
        level = self._pending_cause() is not None
        if level != self._irq_level:
            self._irq_level = level
            self._irq(level)
