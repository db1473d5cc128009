"""Settings: atomic JSON under XDG_CONFIG_HOME; bad files fall back to defaults, never crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vmgui.settings import Settings, config_path, load_settings, save_settings


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path


def test_round_trip_under_xdg_config_home(config_home: Path) -> None:
    s = Settings(connections=["qemu:///system", "test:///default"], stats_interval_s=5,
                 visible_columns=["name", "state"])
    save_settings(s)
    assert config_path() == config_home / "vmgui" / "settings.json"
    assert load_settings() == s
    # Only the final file remains: the temp file was renamed, not left behind.
    assert [p.name for p in (config_home / "vmgui").iterdir()] == ["settings.json"]


def test_missing_and_corrupt_files_give_defaults(config_home: Path) -> None:
    assert load_settings() == Settings()
    config_path().parent.mkdir(parents=True)
    config_path().write_text("{not json")
    assert load_settings() == Settings()
    config_path().write_text(json.dumps({"connections": "nope", "stats_interval_s": 99,
                                         "visible_columns": ["state", "bogus"]}))
    s = load_settings()
    assert s.connections == []
    assert s.stats_interval_s == 10  # clamped to the allowed 1..10 s
    assert s.visible_columns == ["name", "state"]  # name always shown, unknown dropped


def test_failed_save_keeps_the_previous_file(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_settings(Settings(connections=["qemu:///system"]))

    def crash(src: str, dst: str) -> None:  # the rename is where a crash would hit
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m, pytest.raises(OSError):
        m.setattr(os, "replace", crash)
        save_settings(Settings(connections=["test:///default"]))
    assert load_settings().connections == ["qemu:///system"]
    assert [p.name for p in config_path().parent.iterdir()] == ["settings.json"]


def test_window_state_and_force_off_preference_round_trip_and_are_checked(
    config_home: Path,
) -> None:
    s = Settings(confirm_force_off=False, window_geometry="01d9d0cb", sort_column="memory",
                 sort_descending=True, splitter_sizes={"main": [240, 860], "list": [300, 200]})
    save_settings(s)
    assert load_settings() == s
    config_path().write_text(json.dumps({
        "confirm_force_off": "no", "window_geometry": "not hex", "sort_column": "bogus",
        "splitter_sizes": {"main": [1, "x"], "list": [-5], "ok": [10, 20]},
    }))
    bad = load_settings()
    assert bad.confirm_force_off is True and bad.window_geometry == ""
    assert bad.sort_column == "name" and bad.splitter_sizes == {"ok": [10, 20]}
