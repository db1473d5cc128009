"""virtio-net (virtio 1.x §5.1), no offloads.

Guest-visible contract: queue 0 = receive, queue 1 = transmit, MAX_QUEUE_SIZE entries each.
Features: MAC (config bytes 0-5) and STATUS (config bytes 6-7, link always up). Every packet is
preceded by the 12-byte virtio_net_hdr of VIRTIO_F_VERSION_1 (we write zeros and num_buffers=1;
we ignore what the guest sends). Transmitted frames longer than MAX_FRAME or shorter than an
Ethernet header are dropped and counted. While the backend cannot take frames (a stream peer
that stopped reading), transmit buffers stay in the queue until it can: the guest sees a full
transmit queue, never a vCPU that waits. A receive buffer too small for a frame gets the frame
dropped and the buffer returned empty. Frames arriving while the driver has no receive buffers
wait in a backlog of RX_BACKLOG frames; beyond that they are dropped like on a real NIC.

The MAC is stable per VM: derived from the VM's name (or uuid) and locally administered.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import struct

from vmgui.vmm.virtio import buffers
from vmgui.vmm.virtio.device import VIRTIO_ID_NET, FdHandler, VirtioDevice
from vmgui.vmm.virtio.net_backends import MAX_FRAME, NetBackend
from vmgui.vmm.virtio.queue import MAX_QUEUE_SIZE

VIRTIO_NET_F_MAC = 1 << 5
VIRTIO_NET_F_STATUS = 1 << 16
VIRTIO_NET_S_LINK_UP = 1
NET_HDR_SIZE = 12  # virtio_net_hdr incl. num_buffers (always present with VERSION_1)
ETH_HEADER = 14
RX_QUEUE = 0
TX_QUEUE = 1
#: Frames held for the guest while it has posted no receive buffers.
RX_BACKLOG = 256

_RX_HEADER = struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 1)


def stable_mac(vm_id: str) -> bytes:
    """A locally administered unicast MAC that is the same every time for one VM name/uuid."""
    h = hashlib.sha256(vm_id.encode()).digest()
    return bytes([(h[0] & 0xFC) | 0x02]) + h[1:6]


def parse_mac(text: str) -> bytes:
    """'52:54:00:12:34:56' → 6 bytes; ValueError with a one-line message otherwise."""
    parts = text.split(":")
    try:
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        mac = b""
    if len(parts) != 6 or len(mac) != 6 or any(len(p) != 2 for p in parts):
        raise ValueError(f"invalid MAC address {text!r} (expected six hex pairs, aa:bb:...)")
    if mac[0] & 1:
        raise ValueError(f"MAC address {text} is a multicast address")
    return mac


class VirtioNet(VirtioDevice):
    device_id = VIRTIO_ID_NET
    queue_max_sizes = (MAX_QUEUE_SIZE, MAX_QUEUE_SIZE)

    def __init__(self, backend: NetBackend, mac: bytes) -> None:
        super().__init__()
        if len(mac) != 6:
            raise ValueError("a MAC address is 6 bytes")
        self.backend = backend
        self.mac = mac
        self._backlog: collections.deque[bytes] = collections.deque()
        self.tx_frames = 0
        self.rx_frames = 0
        self.tx_dropped = 0
        self.rx_dropped = 0
        self.tx_bytes = 0  # Ethernet frames, without the virtio-net header
        self.rx_bytes = 0

    def features(self) -> int:
        return VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS

    def byte_counters(self) -> tuple[str, dict[str, int]]:
        return "net", {"rx_bytes": self.rx_bytes, "tx_bytes": self.tx_bytes}

    def config(self) -> bytes:
        # mac, status, max_virtqueue_pairs (only meaningful with MQ), mtu (only with F_MTU)
        return self.mac + struct.pack("<HHH", VIRTIO_NET_S_LINK_UP, 1, 1500)

    def deactivate(self) -> None:
        super().deactivate()
        self._backlog.clear()

    def fds(self) -> list[FdHandler]:
        fds = [(self.backend.fileno(), self.backend_readable)]
        if self.backend.space_fd is not None:
            fds.append((self.backend.space_fd, self._backend_has_room))
        return fds

    def _backend_has_room(self) -> None:
        """The backend can take frames again: send what the guest queued meanwhile."""
        if self.backend.space_fd is not None:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self.backend.space_fd)
        self._transmit()

    def process(self, queue_index: int) -> None:
        if queue_index == TX_QUEUE:
            self._transmit()
        elif queue_index == RX_QUEUE:
            self._deliver()

    def backend_readable(self) -> None:
        """Drain the backend (even while inactive, so poll does not spin), then deliver."""
        for frame in self.backend.recv_frames():
            if not self.active or len(self._backlog) >= RX_BACKLOG:
                self.rx_dropped += 1
            else:
                self._backlog.append(frame)
        self._deliver()

    def _transmit(self) -> None:
        q = self._queue(TX_QUEUE)
        if q is None:
            return
        done = False
        while self.backend.can_send() and (chain := q.pop()) is not None:
            size = chain.readable_len - NET_HDR_SIZE
            if ETH_HEADER <= size <= MAX_FRAME:
                _, frame = buffers.split(chain.readable, NET_HDR_SIZE)
                if self.backend.send(buffers.gather(frame)):
                    self.tx_frames += 1
                    self.tx_bytes += size
                else:
                    self.tx_dropped += 1
            else:
                self.tx_dropped += 1
            q.push(chain.head, 0)
            done = True
        if done:
            self._used(TX_QUEUE)

    def _deliver(self) -> None:
        q = self._queue(RX_QUEUE)
        if q is None:
            return
        done = False
        while self._backlog and (chain := q.pop()) is not None:
            frame = self._backlog.popleft()
            written = 0
            if chain.writable_len >= NET_HDR_SIZE + len(frame):
                written = buffers.scatter(chain.writable, _RX_HEADER + frame)
                self.rx_frames += 1
                self.rx_bytes += len(frame)
            else:
                self.rx_dropped += 1
            q.push(chain.head, written)
            done = True
        if done:
            self._used(RX_QUEUE)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.backend.close()
