"""The RFB client against QEMU's own VNC server: each encoding, a password, a resolution
change, and `vmgui vnc-screenshot`; every decoded frame must equal QEMU's screendump.

One QEMU (TCG) serves the whole module; the resolution-change test runs last because it moves
the guest from GRUB's text menu to an 800x600 framebuffer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.rfb.qemu_vnc import (
    GFX_SIZE,
    PASSWORD,
    QemuVnc,
    differing,
    matches_screendump,
    running_qemu,
    screendump,
)
from vmgui.console.rfb import AuthenticationFailed, PasswordRequired, RfbSource, wire
from vmgui.model.console import VncEndpoint

pytestmark = pytest.mark.slow
ENCODINGS = ["raw", "zlib", "tight", "zrle"]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def qemu_vnc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QemuVnc]:
    with running_qemu(tmp_path_factory.mktemp("qemu-vnc")) as vm:
        yield vm


def source_for(path: Path, encoding: str, **kw: object) -> RfbSource:
    return RfbSource(
        VncEndpoint(path=str(path), local=True), encodings=[wire.ENCODING_NAMES[encoding]], **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_encoding_equals_screendump(qemu_vnc: QemuVnc, encoding: str) -> None:
    async def body() -> None:
        source = source_for(qemu_vnc.vnc, encoding)
        await source.start()
        assert source.client is not None
        assert await matches_screendump(lambda: source.client.pixels, qemu_vnc) == ""  # type: ignore[union-attr]
        assert source.client.ext_keys  # QEMU acknowledged extended key events
        await source.close()

    asyncio.run(body())


def test_password(qemu_vnc: QemuVnc) -> None:
    async def body() -> None:
        from qemu.qmp import QMPClient

        qmp = QMPClient("rfb-test")
        await qmp.connect(str(qemu_vnc.qmp))
        await qmp.execute(
            "set_password", {"protocol": "vnc", "password": PASSWORD, "display": "locked"}
        )
        await qmp.disconnect()
        with pytest.raises(PasswordRequired):
            await source_for(qemu_vnc.locked_vnc, "tight").start()
        with pytest.raises(AuthenticationFailed, match="did not accept the password"):
            await source_for(qemu_vnc.locked_vnc, "tight", ask_password=_answer("wrong")).start()
        source = RfbSource(
            VncEndpoint(path=str(qemu_vnc.locked_vnc), password=PASSWORD),
            encodings=[wire.ENC_ZRLE],
        )
        await source.start()
        assert await matches_screendump(lambda: source.client.pixels, qemu_vnc) == ""  # type: ignore[union-attr]
        await source.close()

    asyncio.run(body())


def _answer(text: str):  # type: ignore[no-untyped-def]
    async def ask() -> str:
        return text

    return ask


def test_vnc_screenshot_cli_equals_screendump(qemu_vnc: QemuVnc, tmp_path: Path) -> None:
    """The CLI path imports no Qt; its PNG decodes to QEMU's screendump."""
    out = tmp_path / "shot.png"
    check_no_qt = (
        "import sys; from vmgui.app import main; rc = main(sys.argv[1:]); "
        "assert not [m for m in sys.modules if m.startswith('PySide6')]; sys.exit(rc)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for _attempt in range(5):  # the guest may be drawing between the shot and the dump
        done = subprocess.run(
            [sys.executable, "-c", check_no_qt, "vnc-screenshot", f"unix:{qemu_vnc.vnc}",
             str(out), "--encodings", "tight,zrle"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reference = asyncio.run(screendump(qemu_vnc))
        if not differing(read_png(out), reference):
            break
    assert differing(read_png(out), reference) == ""
    bad = subprocess.run(
        [sys.executable, "-m", "vmgui.app", "vnc-screenshot", f"unix:{qemu_vnc.locked_vnc}",
         str(tmp_path / "no.png")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0 and not (tmp_path / "no.png").exists()
    assert len(bad.stderr.strip().splitlines()) == 1 and "password" in bad.stderr


def read_png(path: Path):  # type: ignore[no-untyped-def]
    """Our PNG writer's output (8-bit RGB, filter 0 rows) back to (h, w) 0x00RRGGBB."""
    import struct
    import zlib

    import numpy as np

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, w * 3 + 1)
    assert (rows[:, 0] == 0).all()
    a = rows[:, 1:].reshape(h, w, 3).astype(np.uint32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def test_resolution_change_followed_by_every_encoding(qemu_vnc: QemuVnc) -> None:
    """Enter (sent as a QEMU extended key event) makes GRUB switch to 800x600."""

    async def body() -> None:
        sources = [source_for(qemu_vnc.vnc, e) for e in ENCODINGS]
        resized: list[tuple[int, int]] = []

        class Listener:
            def damaged(self, rects: object) -> None: ...
            def resized(self, w: int, h: int) -> None:
                resized.append((w, h))
            def closed(self, reason: str) -> None:
                raise AssertionError(reason)

        for s in sources:
            s.set_listener(Listener())
            await s.start()
        assert (sources[0].width, sources[0].height) != GFX_SIZE
        for _ in range(60):  # GRUB ignores keys until its menu is up
            sources[0].send_key(0x1C, 0xFF0D, True)
            sources[0].send_key(0x1C, 0xFF0D, False)
            await asyncio.sleep(0.5)
            if all((s.width, s.height) == GFX_SIZE for s in sources):
                break
        assert [(s.width, s.height) for s in sources] == [GFX_SIZE] * len(sources)
        assert resized.count(GFX_SIZE) >= len(sources)
        for s, name in zip(sources, ENCODINGS, strict=True):
            why = await matches_screendump(lambda s=s: s.client.pixels, qemu_vnc)  # type: ignore[misc]
            assert why == "", f"{name}: {why}"
            assert s.buffer is not None and len(s.buffer) == GFX_SIZE[0] * GFX_SIZE[1] * 4
        for s in sources:
            await s.close()

    asyncio.run(body())
