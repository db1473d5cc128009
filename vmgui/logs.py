"""Logging for the desktop app and `vmgui list`: configured once, by `vmgui.app`.

Warnings and errors go to stderr (so a terminal shows what went wrong), everything from INFO up
(DEBUG with `--debug`) goes to a rotating file in the user's log directory, which is where a bug
report's traceback comes from. Every module logs through `logging.getLogger(__name__)`; nothing
but this module adds handlers. Unexpected exceptions that nobody catches (the main thread, worker
threads, asyncio tasks, Qt slots, which PySide6 hands to `sys.excepthook`) are logged with their
traceback instead of vanishing or only reaching stderr.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

APP_NAME = "vmgui"
LOG_FILE_NAME = "vmgui.log"
#: One file of this size plus this many old ones: enough for a session, bounded on disk.
LOG_FILE_BYTES = 2 * 1024 * 1024
LOG_FILE_BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_MARK = "_vmgui_handler"  # set on our handlers, so configuring twice replaces instead of adding

log = logging.getLogger(__name__)


def log_dir() -> Path:
    """Resolved at call time so tests (and users) can point XDG_STATE_HOME elsewhere."""
    return Path(platformdirs.user_log_dir(APP_NAME))


def log_path() -> Path:
    return log_dir() / LOG_FILE_NAME


def setup_logging(debug: bool = False, directory: Path | None = None) -> Path | None:
    """Install the stderr and file handlers and the uncaught-exception hooks.

    Returns the log file, or None when it cannot be created (read-only home: stderr only, and
    a warning says so). Safe to call again (tests, `--debug` after a first call).
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if debug else logging.INFO)

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if debug else logging.WARNING)
    stderr.setFormatter(logging.Formatter("vmgui: %(levelname)s: %(name)s: %(message)s"))
    _add(root, stderr)

    path: Path | None = (directory or log_dir()) / LOG_FILE_NAME
    assert path is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        log.warning("cannot write the log file %s: %s", path, exc.strerror or exc)
        path = None
    else:
        file.setLevel(logging.DEBUG)
        file.setFormatter(logging.Formatter(_FORMAT))
        _add(root, file)
    install_exception_hooks()
    return path


def _add(root: logging.Logger, handler: logging.Handler) -> None:
    setattr(handler, _MARK, True)
    root.addHandler(handler)


def install_exception_hooks() -> None:
    """Uncaught exceptions of the main thread, worker threads and Qt slots go to the log."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def _excepthook(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("vmgui").error("Unexpected error", exc_info=(kind, exc, tb))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("vmgui").error(
        "Unexpected error in thread %s", name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def install_loop_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Exceptions asyncio could not deliver (a task nobody awaited, a failing callback)."""
    loop.set_exception_handler(_loop_exception)


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    message = context.get("message", "Unexpected error in the event loop")
    where = context.get("task") or context.get("future") or context.get("handle")
    text = f"{message} ({where!r})" if where is not None else message
    logger = logging.getLogger("vmgui")
    if isinstance(exc, BaseException):
        logger.error("%s", text, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        logger.error("%s", text)
