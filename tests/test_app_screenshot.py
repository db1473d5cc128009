"""The real window on a real X server (Xvfb): `vmgui --screenshot` saves a populated list."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.libvirtd import write_test_driver_xml
from tests.support import need_tool

pytestmark = pytest.mark.display
# vmgui.ui.icons.STATE_COLORS of running, paused and crashed
RUNNING_GREEN = (0x2E, 0x9D, 0x44)
PAUSED_AMBER = (0xD4, 0x9B, 0x00)
CRASHED_RED = (0xC6, 0x28, 0x28)


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """A private Xvfb; -displayfd lets the server pick a free display number and tell us."""
    xvfb = need_tool("Xvfb")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=[write_fd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        assert number.isdigit(), "Xvfb did not report a display number"
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run_vmgui(args: list[str], display: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "vmgui.app", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_screenshot_of_the_real_window_under_xvfb(xvfb_display: str, tmp_path: Path) -> None:
    from PySide6.QtGui import QColor, QImage

    node = write_test_driver_xml(tmp_path / "node.xml", 24)
    png = tmp_path / "shot.png"
    result = _run_vmgui(["--connect", f"test://{node}", "--screenshot", str(png)], xvfb_display,
                        tmp_path / "config")
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500

    # Not blank: many distinct colours, and real variance in brightness.
    step = 3
    pixels = [QColor(image.pixel(x, y)) for y in range(0, image.height(), step)
              for x in range(0, image.width(), step)]
    assert len({p.rgb() for p in pixels}) > 50
    light = [p.lightness() for p in pixels]
    mean = sum(light) / len(light)
    assert sum((v - mean) ** 2 for v in light) / len(light) > 100

    # Shows the list: each state's icon is painted on separate rows of the table (right of the
    # sidebar). With the fixture's states, the rows visible unselected are vm0001, vm0002, vm0008,
    # vm0009 running, vm0003 and vm0007 paused/pmsuspended, vm0006 crashed.
    assert _icon_rows(image, RUNNING_GREEN) >= 4
    assert _icon_rows(image, PAUSED_AMBER) >= 2
    assert _icon_rows(image, CRASHED_RED) >= 1


def _icon_rows(image: object, rgb: tuple[int, int, int]) -> int:
    """How many separate vertical runs of this colour the table area has (one per row icon)."""
    from PySide6.QtGui import QColor, QImage

    assert isinstance(image, QImage)
    x0, x1 = image.width() // 4, image.width() // 2
    lines = [
        any(_near(QColor(image.pixel(x, y)), rgb) for x in range(x0, x1))
        for y in range(image.height())
    ]
    return sum(1 for y in range(1, len(lines)) if lines[y] and not lines[y - 1])

def _near(c: object, rgb: tuple[int, int, int]) -> bool:
    from PySide6.QtGui import QColor

    assert isinstance(c, QColor)
    return abs(c.red() - rgb[0]) + abs(c.green() - rgb[1]) + abs(c.blue() - rgb[2]) < 30


def test_screenshot_with_a_failing_connection_is_one_line(
    xvfb_display: str, tmp_path: Path
) -> None:
    png = tmp_path / "shot.png"
    result = _run_vmgui(["--connect", "qemu+tcp://127.0.0.1:1/system", "--screenshot", str(png)],
                        xvfb_display, tmp_path / "config")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Connection refused" in lines[0], result.stderr
    assert not png.exists()
