"""ramfb: the guest's etc/ramfb write points the shared framebuffer memfd at guest RAM."""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import pytest

from vmgui.vmm import kvm
from vmgui.vmm.devices.framebuffer import Framebuffer
from vmgui.vmm.firmware.ramfb import CONFIG, FOURCC_XRGB8888, RamfbDisplay
from vmgui.vmm.memory import GuestMemory

W, H = 64, 32
FB_ADDR = 0x40_0000


class FakeVm:
    """Records memslot changes; its dirty log reports what the test says."""

    def __init__(self) -> None:
        self.slots: list[tuple[int, int, int, int]] = []
        self.dirty_pages: set[int] = set()

    def set_user_memory_region(self, slot: int, guest: int, size: int, host: int, flags: int = 0) -> None:
        self.slots.append((slot, guest, size, flags))

    def get_dirty_log(self, slot: int, size: int) -> bytearray:
        pages = size // mmap.PAGESIZE
        bits = sum(1 << p for p in self.dirty_pages)
        return bytearray(bits.to_bytes((pages + 63) // 64 * 8, "little"))


@pytest.fixture
def parts() -> Iterator[tuple[RamfbDisplay, GuestMemory, Framebuffer, FakeVm]]:
    mem = GuestMemory.create(16 << 20)
    fb = Framebuffer(W, H)
    vm = FakeVm()
    yield RamfbDisplay(fb, mem, vm), mem, fb, vm  # type: ignore[arg-type]
    fb.close()
    mem.close()


def config(addr: int = FB_ADDR, fourcc: int = FOURCC_XRGB8888, w: int = W, h: int = H,
           stride: int = W * 4) -> bytes:
    return CONFIG.pack(addr, fourcc, 0, w, h, stride)


def test_guest_pixels_land_in_the_shared_memfd_both_ways(parts: tuple) -> None:
    display, mem, fb, vm = parts
    mem.write(FB_ADDR, b"\x11\x22\x33\x00")  # drawn before the switch: kept
    display.configure(config())
    assert display.address == FB_ADDR
    assert bytes(fb.pixels()[:4]) == b"\x11\x22\x33\x00"
    mem.write(FB_ADDR + 4 * W, b"\xaa\xbb\xcc\x00")  # the guest draws row 1
    assert bytes(fb.pixels()[4 * W : 4 * W + 4]) == b"\xaa\xbb\xcc\x00"
    fb.pixels()[8:12] = b"\x01\x02\x03\x00"  # and the memfd is the guest's RAM
    assert mem.read(FB_ADDR + 8, 4) == b"\x01\x02\x03\x00"
    assert vm.slots == [(0, 0, 16 << 20, kvm.KVM_MEM_LOG_DIRTY_PAGES)]
    with open(f"/proc/self/fd/{fb.fd}", "rb") as f:  # what a viewer mapping the fd sees
        assert f.read(4) == b"\x11\x22\x33\x00"


def test_dirty_log_is_cut_to_the_framebuffer_pages(parts: tuple) -> None:
    display, _mem, fb, vm = parts
    assert display.dirty_log() is None
    display.configure(config())
    first = FB_ADDR // mmap.PAGESIZE
    vm.dirty_pages = {first - 1, first + 1, first + fb.info.pages}  # neighbours are not ours
    bitmap = display.dirty_log()
    assert bitmap is not None and int.from_bytes(bitmap, "little") == 0b10


def test_moving_the_framebuffer_gives_the_old_pages_back(parts: tuple) -> None:
    display, mem, fb, _vm = parts
    display.configure(config())
    mem.write(FB_ADDR, b"old!")
    display.configure(config(addr=FB_ADDR + (1 << 20)))
    assert mem.read(FB_ADDR, 4) == b"old!"
    mem.write(FB_ADDR, b"mine")  # no longer shared with the display
    assert bytes(fb.pixels()[:4]) != b"mine"


@pytest.mark.parametrize(
    "bad",
    [
        config(fourcc=int.from_bytes(b"RG16", "little")),
        config(w=W * 2),
        config(stride=W * 4 + 64),
        config(addr=FB_ADDR + 12),
        config(addr=(16 << 20) - 4096),  # runs past the end of RAM
        config(addr=0xFFFF_FFFF_FFFF_0000),
    ],
)
def test_bad_set_ups_are_refused(parts: tuple, bad: bytes) -> None:
    display, _mem, _fb, vm = parts
    display.configure(bad)
    assert display.address is None and display.rejected == 1 and vm.slots == []
