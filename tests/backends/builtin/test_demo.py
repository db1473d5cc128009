"""The Demo source: a GRUB ISO built here with grub-mkrescue, cached, cancellable."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support import need_tool
from vmgui.backends.base import BackendError
from vmgui.backends.builtin import checks, demo


def test_demo_iso_is_built_once_and_is_an_iso(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("grub-mkrescue")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    iso = demo.build_demo_iso()
    assert iso.is_file() and iso.is_relative_to(tmp_path)
    assert checks.iso_problem(str(iso)) == ""
    assert b"Hello from vmgui" in iso.read_bytes()
    before = iso.stat().st_mtime_ns
    assert demo.build_demo_iso() == iso and iso.stat().st_mtime_ns == before


def test_cancelled_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("grub-mkrescue")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(BackendError, match="cancelled"):
        demo.build_demo_iso(cancel)
    assert not demo.demo_iso_path().exists()
    assert list(demo.demo_iso_path().parent.iterdir()) == []


def test_missing_tools_name_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendError, match="install the Debian packages grub-common, xorriso"):
        demo.build_demo_iso()
