"""`vmgui create|start|shutdown|reboot|reset|destroy|delete`: VMs from scripts, through the
Backend protocol.

The same `make_backend(uri)` the GUI uses serves these commands, so a VM made here is the VM the
GUI lists, and every refusal is the backend's own sentence. Output: one line per outcome; errors
are one line on stderr ("vmgui: ...") with status 1, usage errors status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from vmgui.backends.base import BUILTIN_URI, Backend, BackendError, find_vm
from vmgui.model import DiskConfig, VmConfig

BackendFactory = Callable[[str], Backend]
COMMANDS = ("create", "start", "shutdown", "reboot", "reset", "destroy", "delete")
DEFAULT_MEMORY = "512M"
MIB = 1 << 20


def add_vm_commands(sub: Any) -> None:
    def connect_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--connect", dest="vm_connect", metavar="URI", default=None,
                       help=f"connection (default {BUILTIN_URI}, this computer's built-in VMM)")

    create = sub.add_parser("create", help="define a VM")
    connect_option(create)
    create.add_argument("--name", required=True)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--kernel", metavar="FILE", help="boot this Linux kernel (bzImage/PVH ELF)")
    source.add_argument("--iso", metavar="FILE", help="boot this ISO image (firmware)")
    source.add_argument("--import", dest="import_disk", metavar="DISK",
                        help="boot this existing disk image (firmware)")
    create.add_argument("--initrd", metavar="FILE")
    create.add_argument("--cmdline", metavar="STR", default="")
    create.add_argument("--memory", metavar="SIZE", default=DEFAULT_MEMORY,
                        help=f"e.g. 512M, 2G; a bare number is MiB (default {DEFAULT_MEMORY})")
    create.add_argument("--cpus", type=int, default=1, metavar="N")
    create.add_argument("--disk", action="append", default=[], metavar="FILE[,size=SIZE]",
                        help="an existing raw image, or with size= a new sparse one (repeatable)")
    create.add_argument("--network", choices=("none", "user"), default="none",
                        help="user: NAT through passt (default none)")
    for name, text in (("start", "start a VM"),
                       ("shutdown", "ask a VM's guest to power off (ACPI power button)"),
                       ("reboot", "ask a VM's guest to power off, then start it again"),
                       ("reset", "restart a VM at once (the reset button)"),
                       ("destroy", "force a VM off at once"),
                       ("delete", "remove a VM's definition")):
        p = sub.add_parser(name, help=text)
        connect_option(p)
        p.add_argument("name", metavar="NAME")
        if name == "delete":
            p.add_argument("--storage", action="store_true",
                           help="also delete its disk images (never ISO images)")


def parse_size_mib(text: str) -> int:
    from vmgui.vmm.config import parse_size  # the VMM's own size syntax
    from vmgui.vmm.errors import VmmError

    try:
        return max(1, parse_size(text) // MIB)
    except VmmError as exc:
        raise BackendError(str(exc)) from None


def parse_disk(spec: str) -> DiskConfig:
    path, _, opts = spec.partition(",")
    size = 0
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key != "size" or not value:
            raise BackendError(f"--disk {spec}: expected FILE or FILE,size=SIZE")
        size = parse_size_mib(value) * MIB
    if not path:
        raise BackendError(f"--disk {spec}: missing file name")
    return DiskConfig(os.path.abspath(path), size_bytes=size)


def config_from(args: argparse.Namespace) -> VmConfig:
    disks = [parse_disk(spec) for spec in args.disk]
    if args.import_disk:
        disks.insert(0, DiskConfig(os.path.abspath(args.import_disk)))
    if (args.initrd or args.cmdline) and not args.kernel:
        raise BackendError("--initrd and --cmdline go with --kernel.")
    absolute = lambda p: os.path.abspath(p) if p else ""  # noqa: E731
    return VmConfig(
        name=args.name,
        memory_mib=parse_size_mib(args.memory),
        vcpus=args.cpus,
        kernel=absolute(args.kernel),
        initrd=absolute(args.initrd),
        cmdline=args.cmdline,
        iso=absolute(args.iso),
        disks=disks,
        network=args.network,
    )


async def _run(args: argparse.Namespace, backend: Backend) -> str:
    if args.command == "create":
        info = await backend.define(config_from(args))
        return f"Created {info.name} ({info.vm_id})"
    vm = await find_vm(backend, args.name)
    actions: dict[str, Callable[[str], Awaitable[None]]] = {
        "start": backend.start,
        "shutdown": backend.shutdown,
        "reboot": backend.reboot,
        "reset": backend.reset,
        "destroy": backend.force_off,
    }
    if args.command in actions:
        await actions[args.command](vm.vm_id)
        done = {"start": "Started", "shutdown": "Asked to shut down:", "reboot": "Asked to reboot:",
                "reset": "Reset", "destroy": "Forced off"}
        return f"{done[args.command]} {vm.name}"
    paths: list[str] = []
    if args.storage:
        paths = [s.path for s in await backend.list_storage(vm.vm_id) if s.deletable]
    await backend.delete(vm.vm_id, paths)
    return f"Deleted {vm.name}" + (f" and {', '.join(paths)}" if paths else "")


async def _with_backend(args: argparse.Namespace, uri: str, factory: BackendFactory) -> str:
    backend = factory(uri)
    try:
        await backend.connect()
        return await _run(args, backend)
    finally:
        await backend.close()


def run_vm_command(args: argparse.Namespace, factory: BackendFactory) -> int:
    uri = args.vm_connect or (args.connect[0] if getattr(args, "connect", None) else BUILTIN_URI)
    try:
        print(asyncio.run(_with_backend(args, uri, factory)))
    except BackendError as exc:
        print(f"vmgui: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    return 0
