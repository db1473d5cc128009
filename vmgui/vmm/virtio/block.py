"""virtio-blk (virtio 1.x §5.2) over a raw image file.

Guest-visible contract: one request queue of MAX_QUEUE_SIZE entries. Features: SIZE_MAX
(BLK_SIZE_MAX bytes per data segment), SEG_MAX (BLK_SEG_MAX data segments per request), FLUSH,
BLK_SIZE (512) and RO for read-only disks. Config: capacity in 512-byte sectors, size_max,
seg_max, blk_size. Requests: IN, OUT, FLUSH (fsync on the host), GET_ID (20-byte serial).
A request outside the image, over the limits, or a write to a read-only disk is answered
VIRTIO_BLK_S_IOERR; an unknown type VIRTIO_BLK_S_UNSUPP. The status byte is the last byte of the
last device-writable descriptor; a malformed request (short header, a status descriptor of
length 0) gets VIRTIO_BLK_S_IOERR in the last writable byte. A chain with no writable byte at
all cannot be answered: QueueError, and the transport marks the device DEVICE_NEEDS_RESET.

Data moves with os.preadv/os.pwritev straight between the image and guest buffers (no copy).
Threading: requests run where the transport calls process() -- the device's I/O thread when the
machine wires an ioeventfd, so vCPUs never wait on the disk.

The image is raw (its content is never probed: see image.py) and locked with QEMU's OFD lock
bytes, so neither another built-in VM nor a QEMU/libvirt VM can write it at the same time.
GET_ID answers the configured serial, or one derived from a hash: never the host file name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Callable

from vmgui.vmm.virtio import buffers
from vmgui.vmm.virtio.device import VIRTIO_ID_BLOCK, VirtioDevice
from vmgui.vmm.virtio.image import DiskImageError, open_image
from vmgui.vmm.virtio.queue import MAX_QUEUE_SIZE, DescriptorChain, QueueError

__all__ = ["DiskImageError", "VirtioBlock", "stable_serial"]

SECTOR_SIZE = 512
#: Largest data segment (one descriptor) a request may carry; advertised as size_max.
BLK_SIZE_MAX = 1 << 20
#: Most data segments per request; advertised as seg_max (a chain also has header + status).
BLK_SEG_MAX = 126
ID_BYTES = 20
REQUEST_HEADER_SIZE = 16

VIRTIO_BLK_F_SIZE_MAX = 1 << 1
VIRTIO_BLK_F_SEG_MAX = 1 << 2
VIRTIO_BLK_F_RO = 1 << 5
VIRTIO_BLK_F_BLK_SIZE = 1 << 6
VIRTIO_BLK_F_FLUSH = 1 << 9

VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8

VIRTIO_BLK_S_OK = 0
VIRTIO_BLK_S_IOERR = 1
VIRTIO_BLK_S_UNSUPP = 2

_HEADER = struct.Struct("<IIQ")


def stable_serial(seed: str) -> bytes:
    """A 20-byte GET_ID serial from `seed` (VM name + disk slot) that reveals nothing of it."""
    return (
        b"vmgui-"
        + hashlib.sha256(seed.encode(errors="surrogateescape")).hexdigest()[: ID_BYTES - 6].encode()
    )


def _full(
    op: Callable[[int, list[memoryview], int], int], fd: int, views: list[memoryview], offset: int
) -> bool:
    """Repeat preadv/pwritev until every byte moved; False on EOF or a zero-length transfer."""
    remaining = buffers.total(views)
    while remaining:
        n = op(fd, views, offset)
        if n <= 0:
            return False
        remaining -= n
        offset += n
        _, views = buffers.split(views, n)
    return True


class VirtioBlock(VirtioDevice):
    device_id = VIRTIO_ID_BLOCK
    queue_max_sizes = (MAX_QUEUE_SIZE,)

    def __init__(self, path: str, read_only: bool = False, serial: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.read_only = read_only
        self.fd = open_image(path, read_only)
        self.capacity = os.lseek(self.fd, 0, os.SEEK_END) // SECTOR_SIZE
        ident = serial.encode(errors="replace") if serial is not None else stable_serial(path)
        self.serial = ident[:ID_BYTES].ljust(ID_BYTES, b"\0")
        self.requests = 0
        self.io_errors = 0
        self.read_bytes = 0
        self.written_bytes = 0

    def features(self) -> int:
        f = VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE
        f |= VIRTIO_BLK_F_FLUSH
        if self.read_only:
            f |= VIRTIO_BLK_F_RO
        return f

    def byte_counters(self) -> tuple[str, dict[str, int]]:
        return "disk", {"read_bytes": self.read_bytes, "write_bytes": self.written_bytes}

    def config(self) -> bytes:
        # capacity, size_max, seg_max, geometry (unused), blk_size
        return struct.pack("<QIIIII", self.capacity, BLK_SIZE_MAX, BLK_SEG_MAX, 0, SECTOR_SIZE, 0)

    def process(self, queue_index: int) -> None:
        q = self._queue(queue_index)
        if q is None:
            return
        done = False
        while (chain := q.pop()) is not None:
            q.push(chain.head, self._execute(chain))
            done = True
        if done:
            self._used(queue_index)

    def _execute(self, chain: DescriptorChain) -> int:
        """Run one request; returns the bytes written into guest buffers (data + status)."""
        self.requests += 1
        header, data_out = buffers.split(chain.readable, REQUEST_HEADER_SIZE)
        data_in, status_views = buffers.split_tail(chain.writable, 1)
        status = next((v for v in status_views if len(v)), None)
        if status is None:
            raise QueueError(f"block request {chain.head} has no writable status byte")
        if buffers.total(header) < REQUEST_HEADER_SIZE or not chain.writable[-1]:
            # A short header, or a status descriptor of length 0: answer in the last byte the
            # guest let us write.
            self.io_errors += 1
            status[0] = VIRTIO_BLK_S_IOERR
            return 1
        kind, _, sector = _HEADER.unpack(buffers.gather(header))
        written = 0
        if kind == VIRTIO_BLK_T_IN:
            code = self._transfer(data_in, sector, os.preadv)
            written = buffers.total(data_in) if code == VIRTIO_BLK_S_OK else 0
            self.read_bytes += written
        elif kind == VIRTIO_BLK_T_OUT:
            code = self._transfer(data_out, sector, os.pwritev, write=True)
            if code == VIRTIO_BLK_S_OK:
                self.written_bytes += buffers.total(data_out)
        elif kind == VIRTIO_BLK_T_FLUSH:
            code = self._flush()
        elif kind == VIRTIO_BLK_T_GET_ID:
            written = buffers.scatter(data_in, self.serial)
            code = VIRTIO_BLK_S_OK
        else:
            code = VIRTIO_BLK_S_UNSUPP
        if code == VIRTIO_BLK_S_IOERR:
            self.io_errors += 1
        status[0] = code
        return written + 1

    def _transfer(
        self,
        views: list[memoryview],
        sector: int,
        op: Callable[[int, list[memoryview], int], int],
        write: bool = False,
    ) -> int:
        if write and self.read_only:
            return VIRTIO_BLK_S_IOERR
        length = buffers.total(views)
        if (
            len(views) > BLK_SEG_MAX
            or any(len(v) > BLK_SIZE_MAX for v in views)
            or sector * SECTOR_SIZE + length > self.capacity * SECTOR_SIZE
        ):
            return VIRTIO_BLK_S_IOERR
        try:
            ok = _full(op, self.fd, views, sector * SECTOR_SIZE)
        except OSError:
            ok = False
        return VIRTIO_BLK_S_OK if ok else VIRTIO_BLK_S_IOERR

    def _flush(self) -> int:
        if self.read_only:
            return VIRTIO_BLK_S_OK
        try:
            os.fsync(self.fd)
        except OSError:
            return VIRTIO_BLK_S_IOERR
        return VIRTIO_BLK_S_OK

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing drops the lock bytes
            self.fd = -1
