"""Desktop integration files validate with the distribution's own tools; the icon renders."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import need_tool

REPO = Path(__file__).resolve().parents[1]
DESKTOP = REPO / "packaging" / "vmgui.desktop"
METAINFO = REPO / "packaging" / "io.github.vmgui.vmgui.metainfo.xml"
ICON = REPO / "resources" / "vmgui.svg"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_desktop_file_validates() -> None:
    tool = need_tool("desktop-file-validate")
    result = _run([tool, str(DESKTOP)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout  # no warnings either
    text = DESKTOP.read_text()
    assert "Exec=vmgui" in text and "Icon=vmgui" in text


def test_appstream_metainfo_validates() -> None:
    tool = need_tool("appstreamcli")
    result = _run([tool, "validate", "--no-net", str(METAINFO)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vmgui.desktop" in METAINFO.read_text()


def test_svg_icon_renders(qapp: object) -> None:
    from PySide6.QtGui import QColor, QIcon

    icon = QIcon(str(ICON))
    assert not icon.isNull()
    image = icon.pixmap(64, 64).toImage()
    assert image.width() == 64
    colors = {QColor(image.pixel(x, y)).name() for x in range(0, 64, 4) for y in range(0, 64, 4)}
    assert len(colors) > 4  # a drawn picture, not an empty or single-colour square
