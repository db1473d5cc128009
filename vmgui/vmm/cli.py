"""`vmgui-vmm run ...`: parse options into a MachineConfig, run the Machine, exit with its status.

Every failure ends with exactly one line on stderr ("vmgui-vmm: <why>") and a non-zero status;
guest poweroff, reset with --on-reboot stop and QMP quit exit 0. Device options register
themselves through `add_run_options`-style helpers: a new device kind adds its arguments in one
function and turns them into config fields in `config_from_args` (see the virtio placeholder).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vmgui.vmm.config import (
    DEFAULT_FRAMEBUFFER,
    MachineConfig,
    SerialSink,
    parse_framebuffer,
    parse_size,
)
from vmgui.vmm.errors import EXIT_ERROR, EXIT_USAGE, VmmError

PROG = "vmgui-vmm"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) so scripts can show it as is."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROG}: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run a virtual machine on /dev/kvm.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="boot a kernel (bzImage or PVH ELF)")
    add_boot_options(run)
    add_machine_options(run)
    add_console_options(run)
    add_device_options(run)
    return parser


def add_boot_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", required=True, metavar="PATH", help="bzImage or PVH ELF")
    p.add_argument("--initrd", metavar="PATH")
    p.add_argument("--cmdline", default="", metavar="STR", help="kernel command line")


def add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", default="256M", metavar="SIZE", help="guest RAM (default 256M)")
    p.add_argument("--cpus", type=int, default=1, metavar="N", help="vCPUs (default 1)")
    p.add_argument(
        "--on-reboot",
        choices=("stop", "restart"),
        default="stop",
        help="what a guest reset does (default stop: exit 0)",
    )


def add_console_options(p: argparse.ArgumentParser) -> None:
    w, h = DEFAULT_FRAMEBUFFER
    p.add_argument("--framebuffer", default=f"{w}x{h}", metavar="WxH|none")
    p.add_argument("--serial", default="stdio", metavar="stdio|file:PATH|none")
    p.add_argument("--qmp", metavar="PATH", help="QMP control socket (created with mode 0600)")


def add_device_options(p: argparse.ArgumentParser) -> None:
    """Virtio options (--disk, --net, --mac, --rng/--no-rng)."""
    from vmgui.vmm.virtio.options import add_virtio_options  # noqa: PLC0415

    add_virtio_options(p)


def config_from_args(args: argparse.Namespace) -> MachineConfig:
    cfg = MachineConfig(
        kernel=args.kernel,
        initrd=args.initrd,
        cmdline=args.cmdline,
        memory=parse_size(args.memory),
        cpus=args.cpus,
        framebuffer=parse_framebuffer(args.framebuffer),
        serial=SerialSink.parse(args.serial),
        qmp=args.qmp,
        on_reboot=args.on_reboot,
    )
    add_devices_from_args(cfg, args)
    return cfg


def add_devices_from_args(cfg: MachineConfig, args: argparse.Namespace) -> None:
    """Turn device options into `cfg.virtio` factories (vmgui.vmm.virtio.options)."""
    from vmgui.vmm.virtio.options import virtio_factories  # noqa: PLC0415

    cfg.virtio.extend(virtio_factories(args, cfg.name))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from vmgui.vmm.machine import Machine  # noqa: PLC0415 - keep --help fast

        return Machine(config_from_args(args)).run()
    except VmmError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return e.exit_status
    except KeyboardInterrupt:
        return EXIT_ERROR
