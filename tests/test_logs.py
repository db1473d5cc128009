"""vmgui.logs: warnings on stderr, everything in the rotating log file, uncaught errors logged."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmgui.logs import LOG_FILE_NAME, log_path, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_hooks = sys.excepthook, threading.excepthook
    yield
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    sys.excepthook, threading.excepthook = saved_hooks


def test_levels_and_uncaught_thread_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    path = setup_logging(directory=tmp_path)
    assert path == tmp_path / LOG_FILE_NAME
    log = logging.getLogger("vmgui.test")
    log.debug("a debug detail")
    log.info("an info line")
    log.warning("a warning")

    def buggy() -> None:
        raise ValueError("bug in a worker thread")

    t = threading.Thread(target=buggy, name="worker-x")
    t.start()
    t.join()
    text = path.read_text()
    assert "an info line" in text and "a debug detail" not in text
    assert "Unexpected error in thread worker-x" in text
    assert "ValueError: bug in a worker thread" in text and "Traceback" in text
    err = capsys.readouterr().err
    assert "a warning" in err and "an info line" not in err

    setup_logging(debug=True, directory=tmp_path)  # again: replaces, never duplicates
    log.debug("now the debug detail")
    assert path.read_text().count("now the debug detail") == 1


def test_cli_logs_to_the_user_log_dir(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from vmgui.app import main; sys.exit(main())",
         "--debug", "list", "--connect", "nonsense"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    env_path = subprocess.run(
        [sys.executable, "-c", "from vmgui.logs import log_path; print(log_path())"],
        env=env, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    assert env_path.startswith(str(tmp_path)) and Path(env_path).is_file()
    assert "vmgui 0" in Path(env_path).read_text()
    assert log_path() != Path(env_path)  # this process keeps its own
