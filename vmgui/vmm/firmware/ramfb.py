"""ramfb: a framebuffer in guest RAM, set up by the firmware through the fw_cfg file etc/ramfb.

Guest-visible contract: the writable fw_cfg file `etc/ramfb` holds 28 big-endian bytes
{u64 address, u32 fourcc, u32 flags, u32 width, u32 height, u32 stride}. Writing it points the
display at `address` in guest RAM; from then on the screen shows whatever the guest stores there.
Accepted: fourcc XR24 (x8r8g8b8), the machine's framebuffer size (1024x768 with --firmware: the
one mode SeaBIOS's ramfb VGA ROM sets), stride 0 or width * 4, a page-aligned address
with the whole picture inside one RAM region. Anything else is refused (counted, logged once),
and the display keeps its previous state.

Scan-out without copying: the pixels must stay in the machine's Framebuffer memfd, because that
is what screendump and the console (`x-vmgui-framebuffer`, SCM_RIGHTS) map. So on a valid write
the memfd is mapped (MAP_FIXED | MAP_SHARED) over the guest-RAM pages the firmware chose: guest
and viewers then share the same pages, and KVM follows the new mapping through its MMU notifier.
The RAM slot gets KVM_MEM_LOG_DIRTY_PAGES, and `dirty_log()` cuts the framebuffer's pages out
of that slot's bitmap, so damage works as with the linear framebuffer. A new address restores
the old pages (copied back into plain anonymous memory) before aliasing the new ones.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import struct
import threading

from vmgui.vmm import kvm
from vmgui.vmm.devices.framebuffer import PAGE_SIZE, Framebuffer
from vmgui.vmm.memory import GuestMemory, GuestMemoryError, MemoryRegion

log = logging.getLogger(__name__)

FILE_NAME = "etc/ramfb"
CONFIG = struct.Struct(">QIIIII")
CONFIG_SIZE = CONFIG.size  # 28
FOURCC_XRGB8888 = int.from_bytes(b"XR24", "little")
BYTES_PER_PIXEL = 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
)  # fmt: skip
MAP_FAILED = ctypes.c_void_p(-1).value
MAP_FIXED = 0x10  # Linux; Python's mmap module does not export it


def _map_fixed(addr: int, length: int, flags: int, fd: int) -> None:
    prot = mmap.PROT_READ | mmap.PROT_WRITE
    got = _libc.mmap(addr, length, prot, flags | MAP_FIXED, fd, 0)  # type: ignore[attr-defined]
    if got in (None, MAP_FAILED) or got != addr:
        err = ctypes.get_errno()
        raise OSError(err, f"mmap over guest RAM failed: {err}")


class RamfbDisplay:
    """Handles etc/ramfb writes and serves the dirty log of the chosen pixels."""

    def __init__(self, fb: Framebuffer, mem: GuestMemory, vm: kvm.VmFd) -> None:
        self.fb = fb
        self.mem = mem
        self.vm = vm
        self.rejected = 0
        self._lock = threading.Lock()
        self._active: tuple[int, MemoryRegion, int] | None = None  # (slot, region, offset)

    @property
    def address(self) -> int | None:
        with self._lock:
            if self._active is None:
                return None
            _, region, offset = self._active
            return region.guest_addr + offset

    def configure(self, data: bytes) -> None:
        """The guest wrote etc/ramfb (vCPU thread)."""
        addr, fourcc, _flags, width, height, stride = CONFIG.unpack(data[:CONFIG_SIZE])
        reason = self._check(addr, fourcc, width, height, stride)
        if reason is not None:
            self.rejected += 1
            if self.rejected == 1:
                log.warning("ramfb: refused the guest's display set-up: %s", reason)
            return
        region, offset = self.mem.check(addr, self.fb.info.size)
        slot = self.mem.regions.index(region)
        with self._lock:
            if self._active is not None and self._active[1:] == (region, offset):
                return
            self._release()
            view = memoryview(self.fb.region.mm)
            view[: self.fb.info.size] = region.mm[offset : offset + self.fb.info.size]
            _map_fixed(region.host_addr + offset, self.fb.info.size, mmap.MAP_SHARED, self.fb.fd)
            self.vm.set_user_memory_region(
                slot, region.guest_addr, region.size, region.host_addr, kvm.KVM_MEM_LOG_DIRTY_PAGES
            )
            self._active = (slot, region, offset)
        self.fb.damage.add_all()

    def _check(self, addr: int, fourcc: int, width: int, height: int, stride: int) -> str | None:
        info = self.fb.info
        if fourcc != FOURCC_XRGB8888:
            return f"pixel format {fourcc:#x} is not XR24"
        if (width, height) != (info.width, info.height):
            return f"{width}x{height} is not the machine's {info.width}x{info.height}"
        if stride not in (0, width * BYTES_PER_PIXEL):
            return f"stride {stride} is not {width * BYTES_PER_PIXEL}"
        if addr % PAGE_SIZE:
            return f"address {addr:#x} is not page-aligned"
        try:
            self.mem.check(addr, info.size)
        except GuestMemoryError as e:
            return str(e)
        return None

    def _release(self) -> None:
        """Give the aliased guest pages back their own memory, keeping their contents."""
        if self._active is None:
            return
        _, region, offset = self._active
        size = self.fb.info.size
        saved = bytes(memoryview(self.fb.region.mm)[:size])
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        _map_fixed(region.host_addr + offset, size, flags, -1)
        region.mm[offset : offset + size] = saved
        self._active = None

    def dirty_log(self) -> bytes | None:
        """KVM's dirty bitmap for the framebuffer's pages (Framebuffer.add_dirty_log's format)."""
        with self._lock:
            if self._active is None:
                return None
            slot, region, offset = self._active
            bitmap = self.vm.get_dirty_log(slot, region.size)
        pages = self.fb.info.pages
        bits = (int.from_bytes(bitmap, "little") >> (offset // PAGE_SIZE)) & ((1 << pages) - 1)
        return bits.to_bytes(self.fb.info.bitmap_bytes, "little")
