"""The DSDT: power button, Generic Event Device, _S5_, and the legacy ISA devices.

The GED (ACPI0013) owns interrupt layout.ACPI_GED_IRQ. On that interrupt Linux runs its _EVT,
which reads the event register at layout.ACPI_GED_BASE (read clears it, see devices/acpi_pm.py)
and, for the power-button bit, does Notify(PWRB, 0x80): the guest's button driver then starts an
orderly shutdown that ends by writing SLP_EN | SLP_TYP(_S5_) to the sleep control port.

Same shape as QEMU microvm's and cloud-hypervisor's reduced-hardware tables (GED + PNP0C0C, no
PM1/GPE blocks). One difference: their GED interrupt is edge-triggered; ours is level /
active-high (with a matching MADT override), so the line simply stays up until _EVT's read has
taken the event and a press can never be lost between the edge and the read.
"""

from __future__ import annotations

from vmgui.vmm import layout
from vmgui.vmm.acpi import aml
from vmgui.vmm.acpi import resources as res
from vmgui.vmm.acpi.sdt import sdt
from vmgui.vmm.devices.acpi_pm import GED_EVENT_POWER_BUTTON, GED_EVENT_WIDTH, S5_SLP_TYP

DSDT_REVISION = 2  # 64-bit integers
NOTIFY_BUTTON_PRESSED = 0x80
VIRTIO_MMIO_HID = "LNRO0005"


def _power_button() -> bytes:
    return aml.device(
        "PWRB",
        aml.name("_HID", aml.eisa_id("PNP0C0C")),
        aml.name("_UID", aml.integer(0)),
    )


def _ged() -> bytes:
    crs = res.template(res.interrupt(layout.ACPI_GED_IRQ, level=True))
    evt = aml.method(
        "_EVT",
        1,
        aml.store(aml.ref("GEVT"), aml.local(0)),
        aml.if_(
            aml.and_(aml.local(0), aml.integer(GED_EVENT_POWER_BUTTON)),
            aml.notify("PWRB", NOTIFY_BUTTON_PRESSED),
        ),
        serialized=True,
    )
    return aml.device(
        "GED_",
        aml.name("_HID", aml.string("ACPI0013")),
        aml.name("_UID", aml.integer(0)),
        aml.name("_CRS", aml.buffer(crs)),
        aml.operation_region("GREG", aml.SYSTEM_MEMORY, layout.ACPI_GED_BASE, GED_EVENT_WIDTH),
        aml.field("GREG", aml.FIELD_DWORD_ACC, ("GEVT", 8 * GED_EVENT_WIDTH)),
        evt,
    )


def _isa_device(path: str, hid: str, uid: int, *descriptors: bytes) -> bytes:
    return aml.device(
        path,
        aml.name("_HID", aml.eisa_id(hid)),
        aml.name("_UID", aml.integer(uid)),
        aml.name("_CRS", aml.buffer(res.template(*descriptors))),
    )


def _virtio_mmio(index: int) -> bytes:
    base = layout.VIRTIO_MMIO_BASE + index * layout.VIRTIO_MMIO_SIZE
    crs = res.template(
        res.memory32_fixed(base, layout.VIRTIO_MMIO_SIZE),
        res.interrupt(layout.VIRTIO_IRQS[index], level=False),
    )
    return aml.device(
        f"V{index:03X}",
        aml.name("_HID", aml.string(VIRTIO_MMIO_HID)),
        aml.name("_UID", aml.integer(index)),
        aml.name("_CRS", aml.buffer(crs)),
    )


def dsdt(
    *, serial: bool = True, i8042: bool = True, rtc: bool = True, virtio_devices: int = 0
) -> bytes:
    """The DSDT table; the flags say which legacy devices the machine really has."""
    if not 0 <= virtio_devices <= min(layout.VIRTIO_MAX_DEVICES, len(layout.VIRTIO_IRQS)):
        raise ValueError(f"{virtio_devices} virtio-mmio devices do not fit the layout")
    devices = [_power_button(), _ged()]
    if serial:
        devices.append(
            _isa_device(
                "COM1",
                "PNP0501",
                0,
                res.io(layout.SERIAL_COM1, 8),
                res.irq_no_flags(layout.SERIAL_COM1_IRQ),
            )
        )
    if i8042:
        devices.append(
            _isa_device(
                "PS2K",
                "PNP0303",
                0,
                res.io(layout.I8042_DATA, 1),
                res.io(layout.I8042_COMMAND, 1),
                res.irq_no_flags(layout.I8042_IRQ),
            )
        )
    if rtc:
        devices.append(
            _isa_device(
                "RTC_", "PNP0B00", 0, res.io(layout.RTC_INDEX, 2), res.irq_no_flags(layout.RTC_IRQ)
            )
        )
    devices += [_virtio_mmio(i) for i in range(virtio_devices)]
    body = aml.scope("\\_SB_", *devices) + aml.name(
        "\\_S5_",
        aml.package(aml.integer(S5_SLP_TYP), aml.integer(0), aml.integer(0), aml.integer(0)),
    )
    return sdt(b"DSDT", DSDT_REVISION, body)
