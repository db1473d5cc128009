"""run_for and exec_async: a failing backend call reaches the user as one sentence and the log
file as a traceback; tasks end with their widget; dialogs are awaited without exec()."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog, QWidget

from tests.ui.conftest import run, run_until
from vmgui.app import make_backend
from vmgui.backends.base import Backend, BackendError, is_builtin
from vmgui.backends.libvirt import LibvirtBackend
from vmgui.logs import LOG_FILE_NAME, setup_logging
from vmgui.model.credentials import AskCredentials
from vmgui.settings import Settings
from vmgui.ui.errors import ErrorDialog
from vmgui.ui.main_window import MainWindow
from vmgui.ui.tasks import exec_async, run_for, tasks_of


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The app's logging, writing to a file of this test; put back as it was afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    path = setup_logging(directory=tmp_path / "log")
    assert path is not None
    yield path
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)


class BuggyStart(LibvirtBackend):
    """The real test:/// backend with a bug in one call."""

    async def start(self, vm_id: str) -> None:
        raise KeyError("deliberate bug in start")


def test_failing_backend_call_shows_a_sentence_and_logs_the_traceback(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any, log_file: Path, config_home: Path
) -> None:
    def factory(uri: str, ask: AskCredentials) -> Backend:
        return make_backend(uri, ask) if is_builtin(uri) else BuggyStart(uri, ask)

    settings = Settings(connections=["test:///default"], confirm_force_off=False)
    w = MainWindow(settings, factory, persist=lambda _s: None)
    w.show()
    try:
        run_until(qt_loop, lambda: len(w.model.keys("test:///default")) == 1, what="the domain")
        assert w.select_vm(w.model.keys("test:///default")[0])
        w.vm_actions.actions["force_off"].trigger()  # test:///default's domain runs
        run_until(qt_loop, lambda: w.vm_actions.actions["start"].isEnabled(), what="shut off")
        w.vm_actions.actions["start"].trigger()
        run_until(qt_loop, lambda: w.last_error != "", what="the error sentence")

        sentence = "Could not start “test”: 'deliberate bug in start'"
        assert w.last_error == sentence
        assert w.statusBar().currentMessage() == sentence
        box = w.last_message_box
        assert isinstance(box, ErrorDialog) and box.isVisible() and box.text() == sentence
        assert "Traceback" in box.detailedText() and "KeyError" in box.detailedText()
        box.close()
        text = log_file.read_text()
        assert sentence in text
        assert "Traceback (most recent call last)" in text
        assert "in start\n    raise KeyError(\"deliberate bug in start\")" in text
        assert log_file.name == LOG_FILE_NAME
        # Nothing the user had is lost: the action is available again.
        run_until(qt_loop, lambda: w.vm_actions.actions["start"].isEnabled(), what="start again")
    finally:
        w.close()
        run(qt_loop, w.shutdown())
        w.deleteLater()


def test_expected_failures_are_logged_without_a_traceback(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any, log_file: Path
) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    reported: list[tuple[str, str]] = []

    async def refused() -> None:
        raise BackendError("Cannot start 'x': it is already running.")

    task = run_for(widget, refused(), "start “x”", report=lambda s, d: reported.append((s, d)))
    run_until(qt_loop, task.done, what="the task")
    assert reported == [("Could not start “x”: Cannot start 'x': it is already running.", "")]
    text = log_file.read_text()
    assert "Could not start “x”" in text and "Traceback" not in text


def test_tasks_are_cancelled_when_their_widget_goes(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    widget = QWidget()
    task = run_for(widget, asyncio.sleep(3600), "wait")
    assert tasks_of(widget) == {task}
    widget.deleteLater()
    run_until(qt_loop, task.done, what="cancellation")
    assert task.cancelled()


def test_exec_async_returns_the_result_without_a_nested_loop(
    qt_loop: asyncio.AbstractEventLoop, qtbot: Any
) -> None:
    dialog = QDialog()
    qtbot.addWidget(dialog)

    async def scenario() -> int:
        asyncio.get_running_loop().call_later(0.05, dialog.accept)
        return await exec_async(dialog)

    assert run(qt_loop, scenario()) == QDialog.DialogCode.Accepted.value
    assert not dialog.isVisible()


def test_make_backend_is_the_composition_root() -> None:
    assert isinstance(make_backend("test:///default"), LibvirtBackend)
