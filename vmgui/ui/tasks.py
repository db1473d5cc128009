"""The one way the UI runs asynchronous work, and the one way it awaits a dialog.

`run_for(owner, coro, what)` starts `coro` on the (qasync) event loop as a task that belongs to
`owner`: it is cancelled when the owner is destroyed (or by `cancel_tasks(owner)`, e.g. when a
window closes), and if it fails the failure is logged (with its traceback when unexpected) and
reported as one sentence, "Could not <what>: <reason>". The caller never needs try/except just to
keep a failure from vanishing.

`await exec_async(dialog)` opens a dialog window-modally with `open()` and waits for its result
without a nested event loop (`exec()` would stall every other task while the dialog is up).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog, QMainWindow, QWidget

from vmgui.ui.errors import details_of, log_failure, readable, show_error_dialog

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Called with (sentence, details) when a task fails; details is the traceback or "".
Report = Callable[[str, str], None]

# owner -> its running tasks. Weak: an entry goes with its Python wrapper, so a new object
# can never inherit another's tasks (ids are reused); the set lives on in the destroyed hook.
_owned: weakref.WeakKeyDictionary[QObject, set[asyncio.Task[Any]]] = weakref.WeakKeyDictionary()
_detached: set[asyncio.Task[Any]] = set()  # owner None: kept referenced until done


def run_for(
    owner: QObject | None,
    coro: Coroutine[Any, Any, T],
    what: str,
    report: Report | None = None,
) -> asyncio.Task[T]:
    """Run `coro` for `owner`; failures become "Could not `what`: reason".

    `report` shows the sentence (default: an error dialog on the owner's window, and its status
    bar if it has one; with no widget owner the log is the only report). Works before the loop
    runs too (from a constructor): the task starts with the loop.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    task = loop.create_task(coro, name=what)
    tasks = _detached if owner is None else _tasks_set(owner)
    tasks.add(task)
    task.add_done_callback(lambda t: _finished(t, tasks, owner, what, report))
    return task


def _tasks_set(owner: QObject) -> set[asyncio.Task[Any]]:
    tasks = _owned.get(owner)
    if tasks is None:
        tasks = _owned[owner] = set()
        owner.destroyed.connect(lambda *_: _cancel_all(tasks))
    return tasks


def tasks_of(owner: QObject) -> set[asyncio.Task[Any]]:
    """The owner's tasks still running (a copy)."""
    return set(_owned.get(owner, ()))


def cancel_tasks(owner: QObject) -> None:
    for task in tasks_of(owner):
        task.cancel()


def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    for task in list(tasks):
        task.cancel()


def _finished(
    task: asyncio.Task[Any],
    tasks: set[asyncio.Task[Any]],
    owner: QObject | None,
    what: str,
    report: Report | None,
) -> None:
    tasks.discard(task)
    if task.cancelled() or task.exception() is None:
        return
    exc = task.exception()
    assert exc is not None
    sentence = f"Could not {what}: {readable(exc)}"
    log_failure(log, sentence, exc)
    if owner is not None and not shiboken6.isValid(owner):
        return  # its window is gone; the log has it
    details = details_of(exc)
    if report is not None:
        report(sentence, details)
    elif isinstance(owner, QWidget):
        window = owner.window()
        if isinstance(window, QMainWindow):
            window.statusBar().showMessage(sentence)
        show_error_dialog(window, sentence, details)


async def exec_async(dialog: QDialog) -> int:
    """Open `dialog` window-modally and return its result code (`QDialog.DialogCode` value).

    If the awaiting task is cancelled, the dialog is rejected so it does not linger.
    """
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def done(result: int) -> None:
        if not fut.done():
            fut.set_result(result)

    dialog.finished.connect(done)
    dialog.open()
    try:
        return await fut
    except asyncio.CancelledError:
        if shiboken6.isValid(dialog) and dialog.isVisible():
            dialog.reject()
        raise
    finally:
        if shiboken6.isValid(dialog):
            dialog.finished.disconnect(done)


async def accepted(dialog: QDialog) -> bool:
    """`exec_async` for the common question: did the user press OK?"""
    return await exec_async(dialog) == QDialog.DialogCode.Accepted.value
