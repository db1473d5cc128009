"""`vmgui list`, `vmgui host-check` dispatch and argument errors, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.libvirtd import write_test_driver_xml
from vmgui.settings import Settings, save_settings

VIRSH_WORDS = {"running", "idle", "paused", "in shutdown", "shut off", "crashed", "pmsuspended",
               "no state"}


def vmgui(args: list[str], home: Path, code: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(home))
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(var, None)
    prog = code or "import sys; from vmgui.app import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", prog, *args], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def node(tmp_path: Path) -> str:
    return f"test://{write_test_driver_xml(tmp_path / 'node.xml', 16)}"


def test_list_json_has_connection_name_state(node: str, tmp_path: Path) -> None:
    result = vmgui(["list", "--connect", node, "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 16
    assert all(set(r) == {"connection", "name", "state"} for r in rows)
    assert {r["connection"] for r in rows} == {node}
    by_name = {r["name"]: r["state"] for r in rows}
    # The fixture cycles running x3, paused, shut off x2, crashed, pmsuspended.
    assert by_name["vm0000"] == "running" and by_name["vm0003"] == "paused"
    assert by_name["vm0004"] == "shut off" and by_name["vm0006"] == "crashed"
    assert by_name["vm0007"] == "pmsuspended"
    assert set(by_name.values()) <= VIRSH_WORDS


def test_list_defaults_to_saved_connections_and_needs_no_qt(node: str, tmp_path: Path) -> None:
    os.environ["XDG_CONFIG_HOME"], saved = str(tmp_path), os.environ.get("XDG_CONFIG_HOME", "")
    try:
        save_settings(Settings(connections=[node, "test:///default"]))
    finally:
        os.environ["XDG_CONFIG_HOME"] = saved
        if not saved:
            del os.environ["XDG_CONFIG_HOME"]
    code = ("import sys; from vmgui.app import main; rc = main(sys.argv[1:]); "
            "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt imported'; "
            "sys.exit(rc)")
    result = vmgui(["list"], tmp_path, code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Connection", "Name", "State"]
    assert any(line.split() == ["test:///default", "test", "running"] for line in lines)
    assert any(line.startswith(node) and line.endswith("shut off") for line in lines)
    assert len(lines) == 2 + 16 + 1


def test_list_errors_are_one_line_each(node: str, tmp_path: Path) -> None:
    result = vmgui(["list", "--connect", "nonsense", "--connect", node], tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "nonsense" in result.stderr
    assert "Traceback" not in result.stderr
    assert "vm0000" in result.stdout  # the good connection is still listed
    empty = vmgui(["list"], tmp_path / "fresh")
    assert empty.returncode == 2 and "no connections" in empty.stderr


def test_gui_without_display_says_so(tmp_path: Path) -> None:
    result = vmgui([], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "vmgui: no display (DISPLAY is unset); run it in a desktop session or via ./setup.sh run"]


def test_host_check_is_dispatched(tmp_path: Path) -> None:
    result = vmgui(["host-check", "--json", "--no-measure"], tmp_path)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert "verdict" in report and "can_run_vms" in report


def test_gui_closes_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmgui.app", "--connect", "test:///default"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(3)  # started; a signal even during start-up would be honoured
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_list_prints_no_empty_table_when_every_connection_failed(tmp_path: Path) -> None:
    result = vmgui(["list", "--connect", "nonsense"], tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""  # no header over nothing
    assert result.stderr.count("\n") == 1 and "nonsense" in result.stderr
    as_json = vmgui(["list", "--connect", "nonsense", "--json"], tmp_path)
    assert as_json.returncode == 1 and as_json.stdout == ""
