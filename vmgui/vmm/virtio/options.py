"""The virtio part of `vmgui-vmm run`: --disk, --net, --mac, --rng/--no-rng → device factories.

Factories (not devices) go into MachineConfig.virtio, so every power-on opens its image and
starts its passt afresh and a reset never reuses a half-used device. Order = slot order:
disks as given, then the network card, then the entropy device.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vmgui.vmm.errors import VmmError
from vmgui.vmm.record import record
from vmgui.vmm.virtio.device import VirtioDevice
from vmgui.vmm.virtio.rng import VirtioRng

DeviceFactory = Callable[[], VirtioDevice]


def add_virtio_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--disk", action="append", default=[], metavar="PATH[,ro][,format=raw][,serial=S]",
                   help="raw disk image as virtio-blk (repeatable; ',ro' for read-only; the "
                   "format is never guessed from the content)")
    p.add_argument("--net", default="none", metavar="none|passt|tap:NAME",
                   help="virtio-net backend (default none)")
    p.add_argument("--mac", metavar="MAC", help="guest MAC (default: stable, from the VM name)")
    p.add_argument("--rng", action=argparse.BooleanOptionalAction, default=True,
                   help="virtio-rng entropy device (default on)")


#: Longest serial a guest can read (virtio-blk GET_ID answers 20 bytes).
MAX_SERIAL = 20


@record(frozen=True)
class DiskSpec:
    """One --disk: the format is what the user configured (raw unless said otherwise)."""

    path: str
    read_only: bool = False
    format: str = "raw"
    serial: str | None = None


def parse_disk(spec: str) -> DiskSpec:
    """'PATH[,ro][,format=raw][,serial=S]' -> DiskSpec; VmmError names the bad part."""
    path, _, opts = spec.partition(",")
    if not path:
        raise VmmError(f"--disk {spec!r}: missing image path")
    read_only, fmt, serial = False, "raw", None
    for opt in filter(None, opts.split(",")):
        key, eq, value = opt.partition("=")
        if opt in ("ro", "readonly"):
            read_only = True
        elif opt == "rw":
            read_only = False
        elif eq and key == "format":
            fmt = value
        elif eq and key == "serial" and value.isascii() and 0 < len(value) <= MAX_SERIAL:
            serial = value
        elif eq and key == "serial":
            raise VmmError(f"--disk {spec!r}: serial must be 1..{MAX_SERIAL} ASCII characters")
        else:
            raise VmmError(f"--disk {spec!r}: unknown option {opt!r} (expected ro, format=raw "
                           "or serial=S)")
    if fmt != "raw":
        raise VmmError(f"--disk {spec!r}: format {fmt!r} is not supported (only raw images; "
                       "the format is never guessed from the image)")
    return DiskSpec(path, read_only, fmt, serial)


def _disk_factory(disk: DiskSpec, serial: str) -> DeviceFactory:
    from vmgui.vmm.virtio.block import VirtioBlock  # noqa: PLC0415 - only for --disk

    return lambda: VirtioBlock(disk.path, read_only=disk.read_only, serial=serial)


def default_serial(vm_name: str, index: int) -> str:
    """A stable per-VM, per-slot disk serial that does not reveal the image's host path."""
    from vmgui.vmm.virtio.block import stable_serial  # noqa: PLC0415

    return stable_serial(f"{vm_name}\0disk{index}").decode()


def virtio_factories(args: argparse.Namespace, vm_name: str) -> list[DeviceFactory]:
    factories: list[DeviceFactory] = []
    for index, spec in enumerate(args.disk):
        disk = parse_disk(spec)
        factories.append(_disk_factory(disk, disk.serial or default_serial(vm_name, index)))
    net = args.net
    if net not in ("none", "passt") and not net.startswith("tap:"):
        raise VmmError(f"--net {net!r}: expected none, passt or tap:NAME")
    if net != "none":
        from vmgui.vmm.virtio.net import VirtioNet, parse_mac, stable_mac  # noqa: PLC0415
        from vmgui.vmm.virtio.net_backends import open_backend  # noqa: PLC0415

        try:
            mac = parse_mac(args.mac) if args.mac else stable_mac(vm_name)
        except ValueError as e:
            raise VmmError(f"--mac: {e}") from None

        def make_net(spec: str = net, mac: bytes = mac) -> VirtioDevice:
            backend = open_backend(spec)
            assert backend is not None
            return VirtioNet(backend, mac)

        factories.append(make_net)
    elif args.mac:
        raise VmmError("--mac needs a network (--net passt or --net tap:NAME)")
    if args.rng:
        factories.append(VirtioRng)
    return factories
