"""What SeaBIOS reads from fw_cfg on this machine, as one function filling a FwCfg.

Items: CPU count (0x05; without it SeaBIOS waits for CPUs forever) and maximum (0x0f), RAM size
(0x03), no graphics-only flag (0x04 = 0), boot menu off (0x0e), and empty legacy NUMA (0x0d),
ACPI (0x8000) and SMBIOS (0x8001) lists plus no IRQ0 override (0x8002): KVM's default routing
sends the PIT to IOAPIC pin 0.
Files: `etc/e820` (20-byte {u64 address, u64 length, u32 type} entries: the RAM regions),
the ACPI tables with `etc/table-loader` (acpi.py), `bootorder` (the disks, in --disk order, as
SeaBIOS names virtio-mmio devices), `etc/boot-fail-wait` (ms before retrying when nothing
boots), `etc/sercon-port` (COM1: SeaBIOS mirrors the screen there and reads keys from it) and,
with a display, the ramfb VGA option ROM and the writable `etc/ramfb`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from vmgui.vmm import layout
from vmgui.vmm.firmware import acpi, ramfb
from vmgui.vmm.firmware.fw_cfg import FwCfg, WriteHandler
from vmgui.vmm.memory import GuestMemory

KEY_RAM_SIZE = 0x03
KEY_NOGRAPHIC = 0x04
KEY_NB_CPUS = 0x05
KEY_NUMA = 0x0D
KEY_BOOT_MENU = 0x0E
KEY_MAX_CPUS = 0x0F
KEY_ACPI_TABLES = 0x8000
KEY_SMBIOS_ENTRIES = 0x8001
KEY_IRQ0_OVERRIDE = 0x8002

E820_RAM = 1
E820_ENTRY = struct.Struct("<QQI")
#: How long SeaBIOS shows "No bootable device" before it retries (by resetting the machine).
BOOT_FAIL_WAIT_MS = 10_000
VGA_ROM_FILE = "vgaroms/vgabios-ramfb.bin"


def e820(mem: GuestMemory) -> bytes:
    return b"".join(E820_ENTRY.pack(r.guest_addr, r.size, E820_RAM) for r in mem.regions)


def bootorder(disk_bases: Sequence[int]) -> bytes:
    """SeaBIOS's device paths for virtio-mmio disks, one per line, first boots first."""
    return b"".join(b"/virtio-mmio@%016x/*\n" % base for base in disk_bases)


def populate(
    fw: FwCfg,
    mem: GuestMemory,
    cpus: int,
    virtio_devices: int,
    disk_bases: Sequence[int],
    vga_rom: bytes | None = None,
    ramfb_write: WriteHandler | None = None,
) -> None:
    fw.add_item(KEY_RAM_SIZE, struct.pack("<Q", mem.size))
    fw.add_item(KEY_NOGRAPHIC, struct.pack("<H", 0))
    fw.add_item(KEY_NB_CPUS, struct.pack("<H", cpus))
    fw.add_item(KEY_MAX_CPUS, struct.pack("<H", cpus))
    fw.add_item(KEY_NUMA, struct.pack("<Q", 0))
    fw.add_item(KEY_BOOT_MENU, struct.pack("<H", 0))
    fw.add_item(KEY_ACPI_TABLES, struct.pack("<H", 0))
    fw.add_item(KEY_SMBIOS_ENTRIES, struct.pack("<H", 0))
    fw.add_item(KEY_IRQ0_OVERRIDE, struct.pack("<I", 0))
    fw.add_file("etc/e820", e820(mem))
    for name, data in acpi.build_acpi_files(cpus, virtio_devices).items():
        fw.add_file(name, data)
    if disk_bases:
        fw.add_file("bootorder", bootorder(disk_bases))
    fw.add_file("etc/boot-fail-wait", struct.pack("<I", BOOT_FAIL_WAIT_MS))
    fw.add_file("etc/sercon-port", struct.pack("<H", layout.SERIAL_COM1))
    if vga_rom is not None and ramfb_write is not None:
        fw.add_file(VGA_ROM_FILE, vga_rom)
        fw.add_file(ramfb.FILE_NAME, bytes(ramfb.CONFIG_SIZE), ramfb_write)
