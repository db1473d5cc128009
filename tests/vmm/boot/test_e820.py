"""The memory map: RAM, the reserved EBDA/BIOS hole, the 32-bit device hole, high RAM."""

from __future__ import annotations

import pytest

from vmgui.vmm import layout
from vmgui.vmm.boot import BootError, E820Entry, build_e820
from vmgui.vmm.boot.e820 import E820_RAM, E820_RESERVED, MMIO_WINDOWS_START
from vmgui.vmm.memory import GuestMemory, map_region

MiB = 1 << 20


def test_low_ram_only() -> None:
    mem = GuestMemory([map_region(0, 64 * MiB)])
    try:
        assert build_e820(mem) == [
            E820Entry(0, layout.EBDA_START, E820_RAM),
            E820Entry(layout.EBDA_START, layout.HIMEM_START - layout.EBDA_START, E820_RESERVED),
            E820Entry(layout.HIMEM_START, 63 * MiB, E820_RAM),
        ]
    finally:
        mem.close()


def test_high_ram_and_device_hole_are_respected() -> None:
    # A region that runs into the device windows is clipped; RAM above 4 GiB is reported as is.
    straddling = map_region(MMIO_WINDOWS_START - 2 * MiB, 4 * MiB)
    mem = GuestMemory([map_region(0, 4 * MiB), straddling, map_region(1 << 32, 8 * MiB)])
    try:
        e820 = build_e820(mem)
        assert E820Entry(MMIO_WINDOWS_START - 2 * MiB, 2 * MiB, E820_RAM) in e820
        assert e820[-1] == E820Entry(1 << 32, 8 * MiB, E820_RAM)
        windows = [
            (layout.FRAMEBUFFER_BASE, layout.FRAMEBUFFER_MAX),
            (layout.VIRTIO_MMIO_BASE, layout.VIRTIO_MMIO_SIZE * layout.VIRTIO_MAX_DEVICES),
            (layout.ACPI_GED_BASE, layout.ACPI_GED_SIZE),
            (layout.IOAPIC_BASE, 0x1000),
            (layout.LAPIC_BASE, 0x1000),
            (layout.KVM_IDENTITY_MAP, 0x1000),
            (layout.KVM_TSS, 0x3000),
        ]
        for e in e820:
            if e.type == E820_RAM:
                for base, size in windows:
                    assert e.end <= base or e.addr >= base + size
        assert [e.addr for e in e820] == sorted(e.addr for e in e820)
    finally:
        mem.close()


def test_too_little_memory() -> None:
    mem = GuestMemory([map_region(0, 1 * MiB)])
    try:
        with pytest.raises(BootError, match="guest memory too small: 1024 KiB"):
            build_e820(mem)
    finally:
        mem.close()
