"""The `vmgui` command: the desktop app, `vmgui list`, `vmgui host-check`, `vmgui vnc-screenshot`.

Qt is imported only on the GUI path, so `vmgui list` runs on plain asyncio (over ssh, in scripts,
on machines without display libraries).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vmgui import __version__
from vmgui.backends.base import BUILTIN_URI, Backend, BackendError, is_builtin, validate_uri
from vmgui.logs import install_loop_handler, setup_logging
from vmgui.model.credentials import AskCredentials
from vmgui.model.host import DomainCapabilities
from vmgui.settings import Settings, load_settings, save_settings
from vmgui.vm_cli import COMMANDS as VM_COMMANDS
from vmgui.vm_cli import add_vm_commands, run_vm_command

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from vmgui.ui.main_window import MainWindow

SCREENSHOT_TIMEOUT_S = 120.0

log = logging.getLogger(__name__)


def make_backend(uri: str, ask_credentials: AskCredentials | None = None) -> Backend:
    """The backend for a connection URI (libvirt for everything but the built-in VMM)."""
    if is_builtin(uri):
        from vmgui.backends.builtin import BuiltinBackend

        builtin: Backend = BuiltinBackend(uri)
        return builtin
    try:
        from vmgui.backends.libvirt import LibvirtBackend
    except ImportError as exc:
        raise BackendError(f"libvirt support is not available: {exc}") from None
    backend: Backend = LibvirtBackend(uri, ask_credentials=ask_credentials)
    return backend


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _connect_error(uri: str, reason: str) -> str:
    """One line; the backend's sentence often names the URI already, so do not repeat it."""
    return f"vmgui: {reason}" if uri in reason else f"vmgui: cannot connect to {uri}: {reason}"


# ---- vmgui list ------------------------------------------------------------------------------


async def _list_connection(uri: str) -> list[dict[str, str]]:
    backend = make_backend(uri)
    await backend.connect()
    try:
        vms = await backend.list_vms()
    finally:
        await backend.close()
    return [
        {"connection": uri, "name": vm.name, "state": vm.state.value}
        for vm in sorted(vms, key=lambda v: v.name)
    ]


async def _list_all(uris: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    results = await asyncio.gather(*(_list_connection(u) for u in uris), return_exceptions=True)
    rows: list[dict[str, str]] = []
    errors: list[str] = []
    for uri, result in zip(uris, results, strict=True):
        if isinstance(result, BaseException):
            errors.append(_connect_error(uri, _one_line(result)))
        else:
            rows.extend(result)
    return rows, errors


def cmd_list(args: argparse.Namespace) -> int:
    uris = args.connect or load_settings().connections
    if not uris:
        print("vmgui: no connections; pass --connect URI (e.g. qemu:///system)", file=sys.stderr)
        return 2
    unique = list(dict.fromkeys(uris))
    rows, errors = asyncio.run(_list_all(unique))
    if len(errors) == len(unique):  # every connection failed: their sentences, no empty table
        for line in errors:
            print(line, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        widths = [max([len(h)] + [len(r[k]) for r in rows]) for h, k in
                  (("Connection", "connection"), ("Name", "name"), ("State", "state"))]
        print(f"{'Connection':<{widths[0]}}  {'Name':<{widths[1]}}  State")
        print("-" * (sum(widths) + 4))
        for r in rows:
            print(f"{r['connection']:<{widths[0]}}  {r['name']:<{widths[1]}}  {r['state']}")
    for line in errors:
        print(line, file=sys.stderr)
    return 1 if errors else 0


# ---- vmgui host-check -----------------------------------------------------------------------


def cmd_host_check(argv: list[str]) -> int:
    """The host probe, with libvirt's capabilities for --connect URIs (wired here: the probe
    sits below the backends)."""
    from vmgui.host import cli

    def check_uri(uri: str) -> str:
        try:
            return validate_uri(uri)
        except BackendError as e:
            raise ValueError(str(e)) from None

    async def fetch(uri: str) -> DomainCapabilities:
        from vmgui.backends.libvirt.domcaps import fetch_domain_capabilities

        return await fetch_domain_capabilities(uri)

    return cli.main(argv, fetch=fetch, check_uri=check_uri)


# ---- the GUI ---------------------------------------------------------------------------------


async def _screenshot(window: MainWindow, app: QApplication, path: str) -> int:
    try:
        failures = await asyncio.wait_for(
            window.manager.wait_populated(), timeout=SCREENSHOT_TIMEOUT_S
        )
    except TimeoutError:
        print(f"vmgui: connections did not answer within {SCREENSHOT_TIMEOUT_S:.0f} s",
              file=sys.stderr)
        return 1
    if failures:
        uri, reason = next(iter(failures.items()))
        print(_connect_error(uri, reason), file=sys.stderr)
        return 1
    if window.proxy.rowCount():
        window.table.selectRow(0)
    # Let layout, the details' XML fetch and a paint happen before grabbing.
    await asyncio.sleep(0.5)
    app.processEvents()
    if not window.grab().save(path, "PNG"):
        print(f"vmgui: cannot write the screenshot to {path}", file=sys.stderr)
        return 1
    return 0


class _QuitOnSignal:
    """Ctrl+C / SIGTERM close the window cleanly (connections closed, settings kept).

    Installed before Qt starts, so a signal during start-up is honoured as soon as the window
    exists. Python runs handlers only when the interpreter gets control, so a light timer wakes
    it while Qt's loop waits in C++.
    """

    def __init__(self) -> None:
        self.requested = False
        self.window: MainWindow | None = None
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.requested = True
        if self.window is not None:
            self.window.close()

    def attach(self, window: MainWindow) -> None:
        from PySide6.QtCore import QTimer

        self.window = window
        wake = QTimer(window)
        wake.timeout.connect(lambda: None)
        wake.start(250)
        if self.requested:
            window.close()


def discover_local_libvirt() -> str:
    """This computer's libvirt URI for a first start, "" when none answers (blocking, short)."""
    try:
        from vmgui.backends.libvirt.discovery import local_libvirt_uri
    except ImportError:  # libvirt-python is missing: nothing to connect to
        return ""
    return local_libvirt_uri()


async def add_local_libvirt(
    settings: Settings, discover: Callable[[], str] = discover_local_libvirt
) -> None:
    """First start: add this computer's libvirt so it connects without asking (as virt-manager
    does). Done once: a connection the user removes later does not come back."""
    if settings.local_libvirt_checked:
        return
    uri = await asyncio.get_running_loop().run_in_executor(None, discover)
    settings.local_libvirt_checked = True
    if uri and uri not in settings.connections:
        settings.connections.append(uri)
    try:
        save_settings(settings)
    except OSError as exc:
        print(f"vmgui: could not save the settings: {exc}", file=sys.stderr)


async def _run_gui(args: argparse.Namespace, app: QApplication, quit_on: _QuitOnSignal) -> int:
    if args.open_console:
        from vmgui.ui.console.launch import run_open_console

        uri = args.connect[0] if args.connect else BUILTIN_URI
        return await run_open_console(app, uri, args.open_console, args.screenshot, make_backend)
    from vmgui.ui.main_window import MainWindow

    settings = load_settings()
    if not args.connect:  # --connect is for this session only: leave the saved list alone
        await add_local_libvirt(settings)
    window = MainWindow(settings, make_backend, extra_uris=args.connect)
    window.show()
    try:
        if args.screenshot:
            return await _screenshot(window, app, args.screenshot)
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_closed() -> None:
            if not closed.done():
                closed.set_result(None)

        app.lastWindowClosed.connect(on_closed)
        quit_on.attach(window)
        await closed
        return 0
    finally:
        window.close()
        await window.shutdown()


def _choose_platform(args: argparse.Namespace) -> str:
    """Avoid Qt's abort() without a display: screenshots render offscreen, the app says why."""
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get(
        "WAYLAND_DISPLAY"
    ):
        return ""
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return ""
    return "vmgui: no display (DISPLAY is unset); run it in a desktop session or via ./setup.sh run"


# Qt platform chatter that says nothing to a user (the offscreen plugin's size-hint note).
_QT_NOISE = ("propagateSizeHints",)


def _route_qt_messages() -> None:
    """Qt's own warnings go through logging like everything else (file, and stderr if serious)."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("vmgui.qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if any(n in message for n in _QT_NOISE):
            return
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def cmd_gui(args: argparse.Namespace) -> int:
    problem = _choose_platform(args)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    quit_on = _QuitOnSignal()
    try:
        import qasync
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        print(f"vmgui: the desktop app needs Qt: {exc}", file=sys.stderr)
        return 1
    _route_qt_messages()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("vmgui")
    app.setDesktopFileName("vmgui")
    app.setQuitOnLastWindowClosed(False)  # we quit after closing connections cleanly
    loop = qasync.QEventLoop(app)
    install_loop_handler(loop)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_run_gui(args, app, quit_on))
    finally:
        loop.close()
        asyncio.set_event_loop(None)


# ---- vmgui vnc-screenshot ---------------------------------------------------------------------


def cmd_vnc_screenshot(args: argparse.Namespace) -> int:
    """Plain asyncio and no Qt: usable in scripts and on machines without display libraries."""
    from dataclasses import replace

    from vmgui.console.rfb import parse_encodings
    from vmgui.console.rfb.snapshot import parse_address, save_screenshot
    from vmgui.console.source import ConsoleError

    try:
        endpoint = parse_address(args.address)
        encodings = parse_encodings(args.encodings) if args.encodings else None
        if args.password_file:
            with open(args.password_file, encoding="utf-8") as f:
                endpoint = replace(endpoint, password=f.readline().rstrip("\r\n"))
    except (ValueError, OSError) as exc:
        print(f"vmgui: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        asyncio.run(save_screenshot(endpoint, args.file, encodings))
    except ConsoleError as exc:
        print(f"vmgui: {args.address}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"vmgui: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


# ---- entry point -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgui", description="Manage virtual machines on libvirt hosts and this computer."
    )
    parser.add_argument("--version", action="version", version=f"vmgui {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="log everything (also to stderr), for bug reports")
    parser.add_argument("--connect", action="append", metavar="URI", default=[],
                        help="open this connection (repeatable; default: the saved ones)")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="save a PNG of the window once the VM lists are loaded (with "
                        "--open-console: once the guest's screen is shown), then exit")
    parser.add_argument("--open-console", metavar="NAME",
                        help="show this VM's console alone, at 1:1 (connection: the first "
                        "--connect, default the built-in one)")
    sub = parser.add_subparsers(dest="command")
    lst = sub.add_parser("list", help="print every VM of the connections")
    lst.add_argument("--connect", action="append", metavar="URI", default=[],
                     help="connection URI (repeatable; default: the saved ones)")
    lst.add_argument("--json", action="store_true", help="JSON: [{connection, name, state}]")
    lst.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("host-check", help="can this computer run VMs hardware-assisted?",
                   add_help=False)
    add_vm_commands(sub)
    shot = sub.add_parser("vnc-screenshot", help="save a VNC server's screen as PNG")
    shot.add_argument("address", metavar="ADDRESS", help="HOST:DISPLAY, HOST::PORT or unix:PATH")
    shot.add_argument("file", metavar="FILE", help="the PNG to write")
    shot.add_argument("--password-file", metavar="F", help="file whose first line is the password")
    shot.add_argument("--encodings", metavar="LIST",
                      help="comma-separated preference, e.g. tight,zrle (raw, zlib, tight, zrle)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    log_file = setup_logging(debug=debug)
    log.debug("vmgui %s, log file %s", __version__, log_file)
    if "host-check" in args_list:
        # Everything after the subcommand belongs to the host-check CLI (its own --json, ...).
        i = args_list.index("host-check")
        if all(a.startswith("-") for a in args_list[:i]):
            return cmd_host_check([a for a in args_list[i + 1 :] if a != "--debug"])
    args: Any = build_parser().parse_args(args_list)
    if args.command == "list":
        return cmd_list(args)
    if args.command in VM_COMMANDS:
        return run_vm_command(args, make_backend)
    if args.command == "vnc-screenshot":
        return cmd_vnc_screenshot(args)
    return cmd_gui(args)


if __name__ == "__main__":
    sys.exit(main())
