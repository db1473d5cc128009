"""The built-in machine's guest-physical and I/O-port map: one table every part agrees on.

RAM starts at 0 and stops at memory.MMIO_HOLE_START (3 GiB); anything larger continues at 4 GiB.
Device windows below sit in the 32-bit hole and never overlap RAM or the e820 map.
"""

from __future__ import annotations

# --- low memory used by the loaders (all below 1 MiB, reserved in e820 where needed) ---
BOOT_GDT = 0x0500
BOOT_IDT = 0x0520
PVH_START_INFO = 0x6000  # hvm_start_info + its memmap/modlist follow
ZERO_PAGE = 0x7000  # Linux boot_params
BOOT_STACK = 0x8FF0
PML4 = 0x9000  # identity page tables: PML4, PDPT, PD (1 GiB per PD page, 2 MiB pages)
PDPT = 0xA000
PD = 0xB000  # up to 4 pages: identity-maps the first 4 GiB
CMDLINE = 0x20000
CMDLINE_MAX = 0x10000
EBDA_START = 0x9FC00  # MP table lives here
MPTABLE = EBDA_START
BIOS_AREA_START = 0xA0000  # VGA hole + BIOS: reserved, not RAM in e820
ACPI_TABLES = 0xE0000  # RSDP (16-byte aligned, Linux scans 0xE0000-0xFFFFF) then the tables
ACPI_TABLES_END = 0x100000
HIMEM_START = 0x100000  # protected-mode kernels and PVH ELF segments load here

# --- KVM's own pages (in the 32-bit hole) ---
KVM_IDENTITY_MAP = 0xFFFBC000
KVM_TSS = 0xFFFBD000

# --- MMIO windows in the 32-bit hole ---
FRAMEBUFFER_BASE = 0xE000_0000
FRAMEBUFFER_MAX = 0x0200_0000  # 32 MiB: up to 4096x2048x4
VIRTIO_MMIO_BASE = 0xD000_0000
VIRTIO_MMIO_SIZE = 0x1000
VIRTIO_MAX_DEVICES = 8
#: GSIs for virtio-mmio devices, in device order (ISA lines no legacy device uses).
VIRTIO_IRQS = (5, 6, 7, 10, 11, 14, 15, 3)
ACPI_GED_BASE = 0xFEB0_0000  # generic event device register (power button event)
ACPI_GED_SIZE = 0x10
ACPI_GED_IRQ = 9  # also the SCI
IOAPIC_BASE = 0xFEC0_0000
LAPIC_BASE = 0xFEE0_0000

# --- I/O ports ---
SERIAL_COM1 = 0x3F8
SERIAL_COM1_IRQ = 4
I8042_DATA = 0x60
I8042_COMMAND = 0x64
I8042_IRQ = 1
I8042_AUX_IRQ = 12  # PS/2 aux port; nothing is attached, see devices/i8042.py
RTC_INDEX = 0x70
RTC_DATA = 0x71
RTC_IRQ = 8
ACPI_SLEEP_CONTROL = 0x3C0  # reduced-hardware FADT sleep control register (SLP_EN | SLP_TYP)
ACPI_SLEEP_STATUS = 0x3C1
ACPI_RESET_PORT = 0x3C2  # FADT reset register (write ACPI_RESET_VALUE to reset)
ACPI_RESET_VALUE = 0x01
