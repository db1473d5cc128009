"""The virtio part of `vmgui-vmm run`: --disk, --net, --mac, --rng/--no-rng → device factories.

Factories (not devices) go into MachineConfig.virtio, so every power-on opens its image and
starts its passt afresh and a reset never reuses a half-used device. Order = slot order:
disks as given, then the network card, then the entropy device.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vmgui.vmm.errors import VmmError
from vmgui.vmm.virtio.device import VirtioDevice
from vmgui.vmm.virtio.rng import VirtioRng

DeviceFactory = Callable[[], VirtioDevice]


def add_virtio_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--disk", action="append", default=[], metavar="PATH[,ro]",
                   help="raw disk image as virtio-blk (repeatable; ',ro' for read-only)")
    p.add_argument("--net", default="none", metavar="none|passt|tap:NAME",
                   help="virtio-net backend (default none)")
    p.add_argument("--mac", metavar="MAC", help="guest MAC (default: stable, from the VM name)")
    p.add_argument("--rng", action=argparse.BooleanOptionalAction, default=True,
                   help="virtio-rng entropy device (default on)")


def parse_disk(spec: str) -> tuple[str, bool]:
    """'PATH' or 'PATH,ro' → (path, read_only); VmmError names the bad part."""
    path, _, opts = spec.partition(",")
    if not path:
        raise VmmError(f"--disk {spec!r}: missing image path")
    read_only = False
    for opt in filter(None, opts.split(",")):
        if opt in ("ro", "readonly"):
            read_only = True
        elif opt == "rw":
            read_only = False
        else:
            raise VmmError(f"--disk {spec!r}: unknown option {opt!r} (expected ro)")
    return path, read_only


def _disk_factory(path: str, read_only: bool) -> DeviceFactory:
    from vmgui.vmm.virtio.block import VirtioBlock  # noqa: PLC0415 - only for --disk

    return lambda: VirtioBlock(path, read_only=read_only)


def virtio_factories(args: argparse.Namespace, vm_name: str) -> list[DeviceFactory]:
    factories: list[DeviceFactory] = []
    for spec in args.disk:
        path, read_only = parse_disk(spec)
        factories.append(_disk_factory(path, read_only))
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
