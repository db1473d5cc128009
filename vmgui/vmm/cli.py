"""`vmgui-vmm run ...`: parse options into a MachineConfig, run the Machine, exit with its status.

Every failure ends with exactly one line on stderr ("vmgui-vmm: <why>") and a non-zero status;
guest poweroff, reset with --on-reboot stop and QMP quit exit 0. Device options register
themselves through `add_run_options`-style helpers: a new device kind adds its arguments in one
function and turns them into config fields in `config_from_args` (see add_device_options).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vmgui.vmm.config import (
    DEFAULT_FRAMEBUFFER,
    DEFAULT_MEMORY,
    MAX_MEMORY,
    MIN_MEMORY,
    MachineConfig,
    SerialSink,
    check_output_file,
    format_size,
    parse_framebuffer,
    parse_size,
    printable,
)
from vmgui.vmm.errors import EXIT_ERROR, EXIT_USAGE, VmmError
from vmgui.vmm.record import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from vmgui.vmm.vm_setup import EarlyStart

PROG = "vmgui-vmm"


def _help_width() -> int:
    """shutil.get_terminal_size().columns - 2, as argparse computes it, without importing shutil:
    argparse builds a formatter for every add_argument, and shutil (zlib, bz2, lzma) costs ~2 ms
    of start-up."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_help_width())


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) so scripts can show it as is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROG}: {printable(message)}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run a virtual machine on /dev/kvm.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="boot a kernel (bzImage or PVH ELF) or firmware")
    add_boot_options(run)
    add_machine_options(run)
    add_console_options(run)
    add_device_options(run)
    return parser


def add_boot_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", default="", metavar="PATH", help="bzImage or PVH ELF")
    p.add_argument(
        "--firmware",
        metavar="seabios|PATH",
        help="boot firmware instead of a kernel: 'seabios' (Debian package seabios) or a BIOS "
        "image; it boots the first --disk (an ISO or disk image) with its own boot loader",
    )
    p.add_argument("--initrd", metavar="PATH")
    p.add_argument("--cmdline", default="", metavar="STR", help="kernel command line")


def add_machine_options(p: argparse.ArgumentParser) -> None:
    default = format_size(DEFAULT_MEMORY)
    p.add_argument("--memory", default=default, metavar="SIZE", help=f"guest RAM (default {default})")
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
    p.add_argument(
        "--serial",
        action="append",
        metavar="stdio|file:PATH|unix:PATH|none",
        help="where COM1 goes; repeat to combine (default stdio). unix:PATH is a socket "
        "(mode 0600) viewers attach to and leave; it replays recent output to a new viewer",
    )
    p.add_argument("--qmp", metavar="PATH", help="QMP control socket (created with mode 0600)")
    p.add_argument(
        "--log",
        metavar="FILE",
        help="append the VMM's log (warnings, errors with tracebacks) to FILE (default stderr)",
    )


def add_device_options(p: argparse.ArgumentParser) -> None:
    """Virtio options (--disk, --net, --mac, --rng/--no-rng)."""
    from vmgui.vmm.virtio.options import add_virtio_options

    add_virtio_options(p)


def config_from_args(args: argparse.Namespace) -> MachineConfig:
    cfg = MachineConfig(
        kernel=args.kernel,
        firmware=args.firmware,
        initrd=args.initrd,
        cmdline=args.cmdline,
        memory=parse_size(args.memory),
        cpus=args.cpus,
        framebuffer=parse_framebuffer(args.framebuffer),
        serial=SerialSink.parse_all(args.serial),
        qmp=args.qmp,
        on_reboot=args.on_reboot,
    )
    add_devices_from_args(cfg, args)
    return cfg


def add_devices_from_args(cfg: MachineConfig, args: argparse.Namespace) -> None:
    """Turn device options into `cfg.virtio` factories (vmgui.vmm.virtio.options)."""
    from vmgui.vmm.virtio.options import virtio_factories

    cfg.virtio.extend(virtio_factories(args, cfg.name))


def start_early(argv: Sequence[str]) -> EarlyStart | None:
    """Start the KVM set-up thread (vm_setup.EarlyStart) for what looks like a `run`, before
    argparse and the heavy imports, so its ~8 ms of ioctls overlap them.

    The memory size is read from argv ahead of argparse, so it is only a guess: main() compares
    it with the parsed config and discards the work on a mismatch. Errors (no /dev/kvm, ...) wait
    in EarlyStart until Machine needs the handle, so bad input is reported exactly as before.
    """
    if not argv or argv[0] != "run" or "-h" in argv or "--help" in argv:
        return None
    text = None
    for i, arg in enumerate(argv):
        if arg == "--memory" and i + 1 < len(argv):
            text = argv[i + 1]
        elif arg.startswith("--memory="):
            text = arg.partition("=")[2]
    try:
        memory = DEFAULT_MEMORY if text is None else parse_size(text)
    except VmmError:
        return None
    if not MIN_MEMORY <= memory <= MAX_MEMORY:
        return None
    from vmgui.vmm.vm_setup import EarlyStart  # keep --help fast

    return EarlyStart(memory)


logging_configured = False
log_file = ""


def log_to_file(path: str) -> Any:
    """Send the VMM's logging to `path` (appended); VmmError with one line if it cannot.
    Returns the handler."""
    global logging_configured, log_file
    import logging  # only with --log: logging costs start-up time

    check_output_file(path, f"--log {path}")
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as e:
        raise VmmError(f"--log {path}: {e.strerror or e}") from None
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging_configured, log_file = True, path
    logging.getLogger(__name__).info("%s %d started: %s", PROG, os.getpid(), " ".join(sys.argv))
    return handler


def _log() -> Any:
    import logging

    return logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    early = None
    try:
        early = start_early(argv)
        args = build_parser().parse_args(argv)
        if args.log:
            log_to_file(args.log)
        cfg = config_from_args(args)
        if early is not None and early.memory != cfg.memory:
            early.close()  # the guess from argv was wrong (e.g. an abbreviated --mem)
            early = None
        from vmgui.vmm.machine import Machine  # keep --help fast

        return Machine(cfg, early).run()
    except VmmError as e:
        sys.stderr.write(f"{PROG}: {printable(str(e))}\n")
        if logging_configured:
            _log().error("%s", e)
        return e.exit_status
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as e:  # a VMM bug: the traceback to the log, one line to the user
        _log().exception("internal error")
        where = f" (details in {log_file})" if log_file else ""
        sys.stderr.write(f"{PROG}: internal error: {e}{where}\n")
        return EXIT_ERROR
    finally:
        if early is not None:
            early.close()
