"""The firmware half of a Board: ROM mapping, fw_cfg, debug port, ramfb and keyboard routing.

Memory: the BIOS image is its own read-only memslot ending at 4 GiB (where the reset vector
0xFFFFFFF0 lands; writes to it exit and are dropped), and its last 128 KiB are copied into RAM
at 0xE0000-0xFFFFF, the writable copy real mode runs from. Both are made fresh on every power-on,
so a reset always starts from the pristine image. The vCPU keeps KVM's architectural reset state
(real mode, CS base 0xFFFF0000, IP 0xFFF0).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

from vmgui.vmm import kvm
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.devices.framebuffer import Framebuffer
from vmgui.vmm.devices.i8042 import I8042
from vmgui.vmm.devices.serial import Serial
from vmgui.vmm.firmware import seabios
from vmgui.vmm.firmware.fw_cfg import PORT_BASE, FwCfg
from vmgui.vmm.firmware.image import LOW_COPY_SIZE, FirmwareFiles
from vmgui.vmm.firmware.keyboard import FirmwareKeyboard
from vmgui.vmm.firmware.legacy_ports import (
    DEBUG_PORT,
    RESET_CONTROL_PORT,
    DebugPort,
    ResetControl,
)
from vmgui.vmm.firmware.ramfb import RamfbDisplay
from vmgui.vmm.memory import GuestMemory, MemoryRegion, map_region

log = logging.getLogger(__name__)

FOUR_GIB = 1 << 32
LOW_COPY_END = 0x10_0000
#: SeaBIOS's words when no disk holds a boot loader; surfaced as one log line.
NO_BOOT_DEVICE = "No bootable device"


class FirmwarePlatform:
    """Owns what firmware boot adds to one power-on; `close()` unmaps the ROM."""

    def __init__(
        self,
        files: FirmwareFiles,
        vm: kvm.VmFd,
        mem: GuestMemory,
        pio: Bus,
        *,
        cpus: int,
        serial: Serial,
        i8042: I8042,
        framebuffer: Framebuffer | None,
        virtio_devices: int,
        disk_bases: Sequence[int],
        rom_slot: int,
        on_reset: Callable[[], None],
        on_no_boot_device: Callable[[str], None] | None = None,
    ) -> None:
        self.vm = vm
        self._on_no_boot = on_no_boot_device
        self._rom: MemoryRegion | None = None
        self._map_rom(files.bios, rom_slot)
        tail = files.bios[-LOW_COPY_SIZE:]
        mem.write(LOW_COPY_END - len(tail), tail)
        self.fw_cfg = FwCfg(mem)
        self.display: RamfbDisplay | None = None
        if framebuffer is not None and files.vga_rom is not None:
            self.display = RamfbDisplay(framebuffer, mem, vm)
        seabios.populate(
            self.fw_cfg,
            mem,
            cpus,
            virtio_devices,
            disk_bases,
            files.vga_rom if self.display is not None else None,
            self.display.configure if self.display is not None else None,
        )
        pio.register(PORT_BASE, FwCfg.PORT_COUNT, self.fw_cfg, "fw_cfg")
        pio.register(DEBUG_PORT, DebugPort.PORT_COUNT, DebugPort(self._debug_line), "debugcon")
        pio.register(RESET_CONTROL_PORT, ResetControl.PORT_COUNT, ResetControl(on_reset), "rcr")
        self.keyboard = FirmwareKeyboard(serial, i8042)

    def _map_rom(self, bios: bytes, slot: int) -> None:
        size = len(bios)
        self._rom = rom = map_region(FOUR_GIB - size, size)
        rom.mm[:size] = bios
        flags = kvm.KVM_MEM_READONLY if self.vm.check_extension(kvm.KVM_CAP_READONLY_MEM) else 0
        self.vm.set_user_memory_region(slot, rom.guest_addr, rom.size, rom.host_addr, flags)

    def _debug_line(self, text: str) -> None:
        log.info("firmware: %s", text)  # the BIOS's own log, in the VMM's --log file
        if NO_BOOT_DEVICE in text and self._on_no_boot is not None:
            self._on_no_boot(text.strip())

    def key_event(self, set2: bytes) -> bool:
        return self.keyboard.key_event(set2)

    def dirty_log(self) -> bytes | None:
        return self.display.dirty_log() if self.display is not None else None

    def close(self) -> None:
        if self._rom is not None:
            with contextlib.suppress(BufferError):  # still exported: goes with the process
                self._rom.mm.close()
            self._rom = None

