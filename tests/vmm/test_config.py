"""MachineConfig parsing and validation: every bad value is one clear line (VmmError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmgui.vmm.config import (
    MachineConfig,
    SerialSink,
    format_size,
    parse_framebuffer,
    parse_size,
)
from vmgui.vmm.errors import VmmError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256M", 256 << 20),
        ("1G", 1 << 30),
        ("512MiB", 512 << 20),
        ("64", 64 << 20),
        ("4096K", 4 << 20),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1M", "1.5G", "12X"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(VmmError, match="memory size"):
        parse_size(text)


def test_format_size_round_trips() -> None:
    assert [format_size(n) for n in (256 << 20, 1 << 30, 4096, 1000)] == [
        "256M",
        "1G",
        "4K",
        "1000B",
    ]


def test_framebuffer_and_serial_options() -> None:
    assert parse_framebuffer("800x600") == (800, 600)
    assert parse_framebuffer("none") is None
    assert SerialSink.parse("file:/tmp/x.log") == SerialSink("file", "/tmp/x.log")
    assert SerialSink.parse("none").kind == "none"
    for bad in ("800x", "file:", "pty"):
        with pytest.raises(VmmError):
            (parse_framebuffer if "x" in bad else SerialSink.parse)(bad)


def test_validate(tmp_path: Path) -> None:
    kernel = tmp_path / "k"
    kernel.write_bytes(b"x")
    MachineConfig(kernel=str(kernel)).validate()
    with pytest.raises(VmmError, match="kernel is not a regular file"):
        MachineConfig(kernel=str(tmp_path)).validate()
    with pytest.raises(VmmError, match="out of range"):
        MachineConfig(kernel=str(kernel), memory=1 << 20).validate()
    with pytest.raises(VmmError, match="at most 8 virtio devices"):
        MachineConfig(kernel=str(kernel), virtio=[object] * 9).validate()
