"""`vmgui --open-console NAME --screenshot FILE` on a real X server (Xvfb) and a real built-in VM:
the saved window shows the guest's framebuffer pattern pixel for pixel (1:1)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.backends.builtin.helpers import connected, guest_config, wait_state
from tests.test_app_screenshot import _run_vmgui, xvfb_display  # noqa: F401 (fixture)
from tests.vmm.test_qmp_machine import fb_pixel
from vmgui.model import VmState

pytestmark = [pytest.mark.display, pytest.mark.kvm, pytest.mark.slow]
W, H = 320, 200


def find_guest(image: Any) -> tuple[int, int] | None:
    """Where the guest's pixel (0, 0) is in the screenshot, by matching a few pattern pixels."""
    probes = [(1, 1), (W - 1, 0), (0, H - 1), (W // 2, H // 2), (W - 1, H - 1)]
    want = fb_pixel(1, 1)
    for oy in range(image.height() - H + 1):
        for ox in range(image.width() - W + 1):
            if image.pixel(ox + 1, oy + 1) & 0xFFFFFF != want:
                continue
            if all(image.pixel(ox + x, oy + y) & 0xFFFFFF == fb_pixel(x, y) for x, y in probes):
                return (ox, oy)
    return None


def test_open_console_screenshot_shows_the_guest_at_one_to_one(
    builtin_env: Any,
    build_guest: Any,
    xvfb_display: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    from PySide6.QtGui import QImage

    kernel = build_guest("fb_pattern")
    config = guest_config("screen", kernel, cmdline=f"fb={W}x{H}", framebuffer=(W, H))

    async def start() -> str:
        backend = await connected()
        try:
            vm = await backend.define(config)
            await backend.start(vm.vm_id)
            await wait_state(backend, vm.vm_id, VmState.RUNNING)
            serial, seen = await backend.open_serial(vm.vm_id), b""
            while b"drawn" not in seen:
                chunk = await asyncio.wait_for(serial.read(), 30)
                assert chunk, f"serial ended before the guest drew: {seen!r}"
                seen += chunk
            await serial.close()
            return vm.vm_id
        finally:
            await backend.close()

    vm_id = asyncio.run(start())
    png = tmp_path / "console.png"
    args = ["--connect", "builtin:///", "--open-console", "screen", "--screenshot", str(png)]
    result = _run_vmgui(args, xvfb_display, tmp_path / "config")
    assert result.returncode == 0, result.stderr
    image = QImage(str(png)).convertToFormat(QImage.Format.Format_RGB32)
    at = find_guest(image)
    assert at is not None, "the guest's pattern is not in the console window"
    ox, oy = at
    bad = [
        (x, y)
        for y in range(0, H, 2)
        for x in range(0, W, 2)
        if image.pixel(ox + x, oy + y) & 0xFFFFFF != fb_pixel(x, y)
    ]
    assert not bad, f"{len(bad)} pixels differ, first {bad[:5]}"

    missing = _run_vmgui(
        ["--connect", "builtin:///", "--open-console", "nosuch", "--screenshot", str(png)],
        xvfb_display, tmp_path / "config",
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "vmgui: There is no VM named “nosuch” on builtin:///."
    ]

    async def stop() -> None:
        backend = await connected()
        try:
            await backend.force_off(vm_id)
        finally:
            await backend.close()

    asyncio.run(stop())
