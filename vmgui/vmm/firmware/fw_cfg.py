"""QEMU's firmware configuration device (fw_cfg) on I/O ports, with the DMA interface.

Guest-visible contract (ports from `PORT_BASE`, register `FwCfg.PORT_COUNT` ports):

  0x510  selector (16-bit write): picks an item and rewinds its read offset to 0
  0x511  data (8-bit read): the selected item's next byte; 0 past its end; writes are ignored
  0x514  DMA address, high 32 bits (big-endian); reads return the signature "QEMU CFG"
  0x518  DMA address, low 32 bits (big-endian); writing it starts the transfer at once

Items: 0x00 "QEMU", 0x01 feature bits (traditional + DMA), 0x19 the file directory (big-endian
count, then 64-byte entries {be32 size, be16 select, u16 0, char name[56]} sorted by name,
selects from 0x20), plus what the machine adds with `add_item`/`add_file`. An unknown selector
reads as an empty item.

DMA: the guest points 0x514/0x518 at a 16-byte big-endian descriptor {u32 control, u32 length,
u64 address} in its RAM. Control bits: ERROR 1, READ 2, SKIP 4, SELECT 8 (selector in the top
16 bits), WRITE 0x10. Reading past an item's end fills zeros; a write must land inside a file
registered writable, else ERROR. When done the device stores control = 0 (or ERROR) back into
the descriptor. The transfer runs synchronously on the vCPU thread that wrote 0x518.

Security boundary: the descriptor address, the transfer's guest range (address + length inside
RAM, no overflow) and its length (at most `MAX_DMA_LENGTH`) are all checked; anything else
ends the transfer with ERROR and never touches host memory outside guest RAM.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from vmgui.vmm.memory import GuestMemory, GuestMemoryError
from vmgui.vmm.record import record

PORT_BASE = 0x510
SELECTOR = 0
DATA = 1
DMA_HIGH = 4
DMA_LOW = 8

KEY_SIGNATURE = 0x00
KEY_ID = 0x01
KEY_FILE_DIR = 0x19
FIRST_FILE_KEY = 0x20
#: Keys with this bit are architecture-specific (x86: ACPI tables, SMBIOS, e820 reservations).
ARCH_LOCAL = 0x8000
#: Selector bit a legacy write channel used; ignored (the key is what matters).
WRITE_CHANNEL = 0x4000
MAX_FILES = 0x100
FILE_NAME_SIZE = 56
FILE_ENTRY = struct.Struct(">IHH56s")

SIGNATURE = b"QEMU"
DMA_SIGNATURE = b"QEMU CFG"
FEATURE_TRADITIONAL = 1 << 0
FEATURE_DMA = 1 << 1

DMA_CTL_ERROR = 0x01
DMA_CTL_READ = 0x02
DMA_CTL_SKIP = 0x04
DMA_CTL_SELECT = 0x08
DMA_CTL_WRITE = 0x10
DMA_DESCRIPTOR = struct.Struct(">IIQ")
#: Longest single DMA transfer a guest may ask for (SeaBIOS's largest is the VGA ROM, ~30 KiB).
MAX_DMA_LENGTH = 16 << 20

WriteHandler = Callable[[bytes], None]


@record
class _Item:
    data: bytearray
    writable: bool = False
    on_write: WriteHandler | None = None


class FwCfgError(ValueError):
    """A file that cannot be added (name too long, too many files)."""


class FwCfg:
    """Items and files served to the firmware; one lock serializes every access."""

    PORT_COUNT = 12

    def __init__(self, mem: GuestMemory) -> None:
        self._mem = mem
        self._lock = threading.Lock()
        self._items: dict[int, _Item] = {}
        self._files: dict[str, _Item] = {}
        self._key = KEY_SIGNATURE
        self._offset = 0
        self._dma_high = 0
        self.dma_errors = 0
        self.add_item(KEY_SIGNATURE, SIGNATURE)
        self.add_item(KEY_ID, struct.pack("<I", FEATURE_TRADITIONAL | FEATURE_DMA))
        self.add_item(KEY_FILE_DIR, struct.pack(">I", 0))

    # ---- the machine's side

    def add_item(self, key: int, data: bytes) -> None:
        self._items[key & ~WRITE_CHANNEL] = _Item(bytearray(data))

    def add_file(self, name: str, data: bytes, on_write: WriteHandler | None = None) -> int:
        """Serve `data` as file `name`; with `on_write` the guest may write it (DMA WRITE).

        Returns its select key. Keys follow sorted names (as QEMU's), so adding a file may
        re-key the others: add every file before the guest runs.
        """
        raw = name.encode()
        if not raw or len(raw) >= FILE_NAME_SIZE:
            raise FwCfgError(f"fw_cfg file name {name!r} is empty or too long")
        if name in self._files:
            raise FwCfgError(f"fw_cfg file {name!r} exists already")
        if len(self._files) >= MAX_FILES:
            raise FwCfgError("too many fw_cfg files")
        self._files[name] = _Item(bytearray(data), on_write is not None, on_write)
        for key in [k for k in self._items if FIRST_FILE_KEY <= k < ARCH_LOCAL]:
            del self._items[key]
        entries = [struct.pack(">I", len(self._files))]
        for i, (fname, item) in enumerate(sorted(self._files.items())):
            self._items[FIRST_FILE_KEY + i] = item
            entries.append(FILE_ENTRY.pack(len(item.data), FIRST_FILE_KEY + i, 0, fname.encode()))
        self._items[KEY_FILE_DIR] = _Item(bytearray(b"".join(entries)))
        return FIRST_FILE_KEY + sorted(self._files).index(name)

    def file_data(self, name: str) -> bytes:
        return bytes(self._files[name].data)

    # ---- the guest's side (Bus device)

    def read(self, offset: int, size: int) -> int:
        with self._lock:
            if offset == DATA and size == 1:
                item = self._items.get(self._key)
                value = 0
                if item is not None and self._offset < len(item.data):
                    value = item.data[self._offset]
                    self._offset += 1
                return value
            if DMA_HIGH <= offset < DMA_HIGH + len(DMA_SIGNATURE):
                start = offset - DMA_HIGH
                chunk = DMA_SIGNATURE[start : start + size].ljust(size, b"\xff")
                return int.from_bytes(chunk, "little")
            return (1 << (8 * size)) - 1

    def write(self, offset: int, size: int, value: int) -> None:
        with self._lock:
            if offset == SELECTOR and size in (1, 2):
                self._select(value)
            elif offset == DMA_HIGH and size == 4:
                self._dma_high = _swap32(value)
            elif offset == DMA_HIGH and size == 8:
                addr = int.from_bytes(value.to_bytes(8, "little"), "big")
                self._dma(addr)
            elif offset == DMA_LOW and size == 4:
                addr = (self._dma_high << 32) | _swap32(value)
                self._dma_high = 0
                self._dma(addr)

    def _select(self, key: int) -> None:
        self._key = key & 0xFFFF & ~WRITE_CHANNEL
        self._offset = 0

    # ---- DMA

    def _dma(self, desc_addr: int) -> None:
        try:
            control, length, address = DMA_DESCRIPTOR.unpack(self._mem.read(desc_addr, 16))
        except GuestMemoryError:
            self.dma_errors += 1
            return  # nowhere to report: the guest's descriptor is not in RAM
        try:
            ok = self._transfer(control, length, address)
        except GuestMemoryError:
            ok = False
        if not ok:
            self.dma_errors += 1
        status = 0 if ok else DMA_CTL_ERROR
        try:
            self._mem.write(desc_addr, struct.pack(">I", status))
        except GuestMemoryError:
            self.dma_errors += 1

    def _transfer(self, control: int, length: int, address: int) -> bool:
        if control & DMA_CTL_SELECT:
            self._select(control >> 16)
        if length > MAX_DMA_LENGTH:
            return False
        item = self._items.get(self._key)
        data = item.data if item is not None else bytearray()
        start = min(self._offset, len(data))
        available = len(data) - start
        n = min(length, available)
        if control & DMA_CTL_READ:
            self._mem.check(address, length)  # the whole range first: all or nothing
            self._mem.write(address, data[start : start + n])
            if length > n:
                self._mem.fill(address + n, length - n)
        elif control & DMA_CTL_WRITE:
            if item is None or not item.writable or length > available:
                return False
            data[start : start + length] = self._mem.read(address, length)
            if item.on_write is not None:
                item.on_write(bytes(data))
        elif not control & DMA_CTL_SKIP:
            return True  # SELECT only (or nothing): done
        self._offset += n
        return True


def _swap32(value: int) -> int:
    return int.from_bytes((value & 0xFFFF_FFFF).to_bytes(4, "little"), "big")
