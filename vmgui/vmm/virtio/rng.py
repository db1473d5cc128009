"""virtio-rng / entropy device (virtio 1.x §5.4).

Guest-visible contract: one request queue; each chain's device-writable buffers are filled from
the host's random source (os.getrandom, never blocking after boot) up to RNG_MAX_BYTES_PER_REQUEST
bytes, and the used length says how many. No features, no config space. Readable buffers are
ignored.
"""

from __future__ import annotations

import os

from vmgui.vmm.virtio import buffers
from vmgui.vmm.virtio.device import VIRTIO_ID_RNG, VirtioDevice
from vmgui.vmm.virtio.queue import MAX_QUEUE_SIZE

#: Cap per request so one guest cannot make us draw unbounded host entropy per kick.
RNG_MAX_BYTES_PER_REQUEST = 64 * 1024


class VirtioRng(VirtioDevice):
    device_id = VIRTIO_ID_RNG
    queue_max_sizes = (MAX_QUEUE_SIZE,)

    def __init__(self) -> None:
        super().__init__()
        self.bytes_served = 0

    def process(self, queue_index: int) -> None:
        q = self._queue(queue_index)
        if q is None:
            return
        done = False
        while (chain := q.pop()) is not None:
            want = min(chain.writable_len, RNG_MAX_BYTES_PER_REQUEST)
            written = buffers.scatter(chain.writable, os.getrandom(want)) if want else 0
            self.bytes_served += written
            q.push(chain.head, written)
            done = True
        if done:
            self._used(queue_index)
