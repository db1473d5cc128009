"""One power-on of the machine: KVM VM, RAM, memslots, irqchip + PIT, buses, devices, the loaded
kernel and the vCPU threads. A reset with --on-reboot restart throws the Board away and builds a
new one (only the framebuffer memfd outlives it, so a viewer keeps its mapping).

Guest-physical map and ports come from layout.py. Memslots: one per RAM region (slot 0 = low RAM,
slot 1 = RAM above 4 GiB when present), then the framebuffer with KVM_MEM_LOG_DIRTY_PAGES.
Interrupts: KVM's in-kernel PIC + IOAPIC + LAPICs with its default GSI routing (ISA IRQ n =
GSI n on both); devices raise lines through KVM_IRQ_LINE, virtio through irqfd.
SMP: the BSP (vCPU 0) starts at the loader's entry; APs wait in KVM's wait-for-SIPI state and
are started by the guest's INIT-SIPI-SIPI through the in-kernel LAPIC, as on real hardware;
the MP table (and the ACPI MADT when ACPI tables are built) list every vCPU.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable

from vmgui.vmm import kvm, layout
from vmgui.vmm.acpi import build_acpi
from vmgui.vmm.boot import BootError, CpuState, build_mptable, detect_kernel, load_bzimage, load_pvh
from vmgui.vmm.boot.screen_info import ScreenInfo
from vmgui.vmm.config import MachineConfig
from vmgui.vmm.devices.acpi_pm import PM_PORTS_SIZE, AcpiPmPorts, GenericEventDevice
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.devices.framebuffer import Framebuffer
from vmgui.vmm.devices.i8042 import I8042
from vmgui.vmm.devices.rtc import Rtc
from vmgui.vmm.devices.serial import Serial
from vmgui.vmm.errors import VmmError
from vmgui.vmm.memory import GuestMemory, GuestMemoryError
from vmgui.vmm.record import TYPE_CHECKING, record
from vmgui.vmm.vcpu import VcpuEvent, VcpuThread
from vmgui.vmm.vcpu_setup import apply_cpu_state, configure_vcpu
from vmgui.vmm.vm_setup import VmShell, create_shell

if TYPE_CHECKING:
    import logging
    from typing import Any

    from vmgui.vmm.firmware.image import FirmwareFiles
    from vmgui.vmm.firmware.platform import FirmwarePlatform
    from vmgui.vmm.virtio.attach import VirtioDevices

#: How long Board.close() waits for its threads before leaving the release to a reaper thread.
STOP_TIMEOUT = 0.3


@record
class BoardHooks:
    """How devices reach the outside: all called on vCPU (or I/O) threads."""

    serial_out: Callable[[bytes], None]
    serial_rx_empty: Callable[[], None]
    poweroff: Callable[[str], None]  # reason
    reset: Callable[[str], None]  # reason
    vcpu_event: Callable[[VcpuEvent], None]
    #: A message from the firmware worth one log line (e.g. "No bootable device").
    firmware_message: Callable[[str], None] | None = None


@record(frozen=True)
class BootImage:
    """The files a Board loads, read once up front so every error is found before starting."""

    kernel: bytes
    initrd: bytes | None
    kind: str  # "bzimage" | "pvh" | "firmware"
    firmware: FirmwareFiles | None = None


def read_boot_image(cfg: MachineConfig) -> BootImage:
    if cfg.firmware:
        from vmgui.vmm.firmware.image import load_firmware  # noqa: PLC0415 - firmware only

        files = load_firmware(cfg.firmware, display=cfg.framebuffer)
        return BootImage(b"", None, "firmware", files)
    try:
        with open(cfg.kernel, "rb") as f:
            kernel = f.read()
        initrd = None
        if cfg.initrd is not None:
            with open(cfg.initrd, "rb") as f:
                initrd = f.read()
    except OSError as e:
        raise VmmError(f"cannot read {e.filename}: {e.strerror}") from None
    try:
        kind = detect_kernel(kernel)
    except BootError as e:
        raise VmmError(f"{cfg.kernel}: {e}") from None
    return BootImage(kernel, initrd, kind)


class Board:
    """Everything one power-on owns; `close()` releases it all (fds, memory, threads)."""

    def __init__(
        self,
        cfg: MachineConfig,
        system: kvm.Kvm,
        image: BootImage,
        framebuffer: Framebuffer | None,
        hooks: BoardHooks,
        shell: VmShell | None = None,
    ) -> None:
        """`shell`: the VM-wide set-up made ahead of time (EarlyStart); built here when None."""
        self.cfg = cfg
        self.hooks = hooks
        self.framebuffer = framebuffer
        self.fb_slot = -1
        self.vcpus: list[VcpuThread] = []
        self.pio = Bus("pio")
        self.mmio = Bus("mmio")
        self.vm: kvm.VmFd | None = None
        self.mem: GuestMemory | None = None
        self.virtio: VirtioDevices | None = None
        self.firmware: FirmwarePlatform | None = None
        try:
            self._build(system, image, shell)
        except BaseException:
            self.close()  # no vCPU thread has started yet: releases at once
            raise

    # ---- assembly

    def _build(self, system: kvm.Kvm, image: BootImage, shell: VmShell | None) -> None:
        cfg = self.cfg
        if shell is None:
            shell = create_shell(system, cfg.memory)
        self.vm = vm = shell.vm
        self.mem = mem = shell.mem
        if self.framebuffer is not None and image.firmware is None:  # firmware: ramfb instead
            fb = self.framebuffer
            self.fb_slot = len(mem.regions)
            vm.set_user_memory_region(
                self.fb_slot,
                fb.info.base,
                fb.info.size,
                fb.region.host_addr,
                kvm.KVM_MEM_LOG_DIRTY_PAGES,
            )
        self._add_devices(vm)
        if cfg.virtio:  # imported only when used: the virtio package costs start-up time
            from vmgui.vmm.virtio.attach import add_virtio_devices

            self.virtio = add_virtio_devices(vm, mem, self.mmio, cfg.virtio)
        state = None
        if image.firmware is not None:
            self.firmware = self._add_firmware(vm, mem, image.firmware)
        else:
            state = self._load(mem, image)
        supported = shell.supported_cpuid
        for index in range(cfg.cpus):
            fd = vm.create_vcpu(index)
            configure_vcpu(fd, supported)
            if index == 0 and state is not None:  # firmware starts in the reset state
                apply_cpu_state(fd, state)
            self.vcpus.append(VcpuThread(fd, self.pio, self.mmio, self.hooks.vcpu_event))

    def _irq_line(self, gsi: int) -> Callable[[bool], None]:
        vm = self.vm
        assert vm is not None
        return lambda level: vm.irq_line(gsi, level)

    def _power_event(self, hook: Callable[[str], None], reason: str) -> None:
        """A device pulled the reset line or cut the power (on a vCPU thread, inside the port
        write). As on real hardware no further guest instruction runs: every vCPU parks until
        the machine restarts or ends this Board. (SeaBIOS follows its reset request with more
        reset methods and finally int3, which a host that emulates ring 0 cannot run.)"""
        for v in self.vcpus:
            v.request_pause()
        hook(reason)

    def _add_devices(self, vm: kvm.VmFd) -> None:
        self.serial = Serial(
            self.hooks.serial_out,
            self._irq_line(layout.SERIAL_COM1_IRQ),
            self.hooks.serial_rx_empty,
        )
        self.pio.register(layout.SERIAL_COM1, Serial.PORT_COUNT, self.serial, "serial")
        self.i8042 = I8042(
            self._irq_line(layout.I8042_IRQ),
            lambda: self._power_event(self.hooks.reset, "i8042 reset line"),
            self._irq_line(layout.I8042_AUX_IRQ),
        )
        self.pio.register(layout.I8042_DATA, I8042.PORT_COUNT, self.i8042, "i8042")
        self.rtc = Rtc(self.cfg.memory, self._irq_line(layout.RTC_IRQ), self.cfg.cpus)
        self.pio.register(layout.RTC_INDEX, Rtc.PORT_COUNT, self.rtc, "rtc")
        self.acpi_pm = AcpiPmPorts(
            lambda: self._power_event(self.hooks.poweroff, "ACPI S5"),
            lambda: self._power_event(self.hooks.reset, "ACPI reset"),
        )
        self.pio.register(layout.ACPI_SLEEP_CONTROL, PM_PORTS_SIZE, self.acpi_pm, "acpi-pm")
        self.ged = GenericEventDevice(self._irq_line(layout.ACPI_GED_IRQ))
        self.mmio.register(layout.ACPI_GED_BASE, layout.ACPI_GED_SIZE, self.ged, "acpi-ged")

    def _add_firmware(
        self, vm: kvm.VmFd, mem: GuestMemory, files: FirmwareFiles
    ) -> FirmwarePlatform:
        from vmgui.vmm.firmware.platform import FirmwarePlatform  # noqa: PLC0415
        from vmgui.vmm.virtio.device import VIRTIO_ID_BLOCK  # noqa: PLC0415

        transports = self.virtio.transports if self.virtio is not None else []
        disks = [
            layout.VIRTIO_MMIO_BASE + i * layout.VIRTIO_MMIO_SIZE
            for i, t in enumerate(transports)
            if t.device.device_id == VIRTIO_ID_BLOCK
        ]
        return FirmwarePlatform(
            files, vm, mem, self.pio,
            cpus=self.cfg.cpus, serial=self.serial, i8042=self.i8042,
            framebuffer=self.framebuffer, virtio_devices=len(transports), disk_bases=disks,
            rom_slot=len(mem.regions) + 1,
            on_reset=lambda: self._power_event(self.hooks.reset, "reset control register"),
            on_no_boot_device=self.hooks.firmware_message,
        )  # fmt: skip

    def key_event(self, scancodes_set2: bytes) -> bool:
        """A key for the guest: the i8042, or the firmware's console while it runs."""
        if self.firmware is not None:
            return self.firmware.key_event(scancodes_set2)
        return self.i8042.key_event(scancodes_set2)

    def _load(self, mem: GuestMemory, image: BootImage) -> CpuState:
        cfg = self.cfg
        # virtio devices are announced on the command line (PVH: in hvm_start_info), not in the
        # DSDT as well: both would make Linux probe each device twice.
        virtio_words = self.virtio.cmdline if self.virtio is not None else ""
        cmdline = f"{cfg.cmdline} {virtio_words}".strip()
        try:
            build_mptable(mem, cfg.cpus)
            rsdp = build_acpi(mem, cfg.cpus, virtio_devices=0)
            if image.kind == "bzimage":
                screen = None
                if self.framebuffer is not None:
                    i = self.framebuffer.info
                    screen = ScreenInfo(i.base, i.width, i.height, i.stride)
                return load_bzimage(mem, image.kernel, cmdline, image.initrd, screen, rsdp)
            return load_pvh(mem, image.kernel, cmdline, image.initrd, rsdp)
        except BootError as e:
            raise VmmError(f"{cfg.kernel}: {e}") from None
        except GuestMemoryError as e:
            raise VmmError(f"{cfg.kernel}: does not fit in guest memory: {e}") from None

    # ---- running

    def start(self) -> None:
        for v in self.vcpus:
            v.start()

    def resume(self) -> None:
        for v in self.vcpus:
            v.resume()

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """End every vCPU thread; True when all have ended within `timeout` seconds in all."""
        for v in self.vcpus:
            v.request_quit()
        deadline = time.monotonic() + timeout
        return all([v.join(max(deadline - time.monotonic(), 0.0)) for v in self.vcpus])

    def dirty_log(self) -> bytes | None:
        if self.vm is None or self.framebuffer is None:
            return None
        if self.firmware is not None:
            return self.firmware.dirty_log()
        return bytes(self.vm.get_dirty_log(self.fb_slot, self.framebuffer.info.size))

    def stats(self) -> dict[str, Any]:
        """Exit and I/O counters (x-vmgui-stats)."""
        vcpus = list(self.vcpus)
        reads, writes, bad_reads, bad_writes = 0, 0, 0, 0
        for v in vcpus:
            r, w, br, bw = v.pio_counts
            reads, writes, bad_reads, bad_writes = (
                reads + r,
                writes + w,
                bad_reads + br,
                bad_writes + bw,
            )
        unhandled: dict[str, int] = {}
        for v in vcpus:
            for port, n in list(v.pio_unhandled.items()):
                unhandled[f"{port:#x}"] = unhandled.get(f"{port:#x}", 0) + n
        s = self.mmio.stats
        return (self.virtio.byte_counters() if self.virtio is not None else {}) | {
            "vcpus": [{"index": v.index, "exits": v.exit_counts()} for v in vcpus],
            "pio": {
                "reads": reads,
                "writes": writes,
                "unhandled_reads": bad_reads,
                "unhandled_writes": bad_writes,
                "unhandled": unhandled,
            },
            "mmio": {
                "reads": s.reads,
                "writes": s.writes,
                "unhandled_reads": s.unhandled_reads,
                "unhandled_writes": s.unhandled_writes,
                "unhandled": {f"{a:#x}": n for a, n in list(s.unhandled_addrs.items())},
            },
        }

    def close(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop every thread, then release fds and RAM; True when released now.

        A thread that does not end within `timeout` (a vCPU or I/O thread stuck in a device
        call, e.g. a backend that stopped reading) still uses them: nothing is released under
        it (its fd numbers would be reused by the next Board, and its guest RAM unmapped under
        KVM_RUN). A reaper thread then releases everything once the last thread has ended, and
        False tells the caller to keep what the Board borrowed (the framebuffer) as well.
        """
        deadline = time.monotonic() + timeout
        stopped = self.stop(timeout)
        if self.virtio is not None:
            stopped = self.virtio.stop(max(deadline - time.monotonic(), 0.0)) and stopped
        if stopped:
            self._release()
            return True
        _log().warning(
            "a vCPU or I/O thread is stuck in a device call; its VM is released when it returns"
        )
        threading.Thread(
            target=self._release_when_stopped, name="board-reaper", daemon=True
        ).start()
        return False

    def _release_when_stopped(self) -> None:
        for v in self.vcpus:
            v.join(None)
        if self.virtio is not None:
            self.virtio.stop(None)
        self._release()

    def _release(self) -> None:
        for v in self.vcpus:
            v.fd.close()
        self.vcpus = []
        if self.virtio is not None:
            self.virtio.close()
            self.virtio = None
        if self.vm is not None:
            self.vm.close()
            self.vm = None
        if self.firmware is not None:
            self.firmware.close()
            self.firmware = None
        if self.mem is not None:
            with contextlib.suppress(BufferError, OSError):
                self.mem.close()
            self.mem = None


def _log() -> logging.Logger:
    """Imported on first use: logging costs the VMM's start-up ~3 ms."""
    import logging

    return logging.getLogger(__name__)


def process_rss() -> int:
    """Resident set size of this process in bytes (from /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
