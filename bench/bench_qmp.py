"""QMP control-path figures: screendump encoders, damage from a dirty bitmap, and round trips
through a real `vmgui-vmm run --qmp` (power_button test guest, 1024x768 framebuffer) with the
qemu.qmp client. Prints figures; asserts only that results are right.
Targets (issue 3 / control brief): a 1024x768 screendump well under 100 ms.

    .venv/bin/python bench/bench_qmp.py [rounds]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qemu.qmp import QMPClient  # noqa: E402

from tests.guests.build import build_guest  # noqa: E402
from vmgui.vmm.devices.framebuffer import FramebufferInfo, damage_rects  # noqa: E402
from vmgui.vmm.screendump import encode_png, encode_ppm  # noqa: E402

W, H = 1024, 768
TARGET_SCREENDUMP_MS = 100.0


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1e3:7.2f} ms   min {min(values) * 1e3:7.2f} ms   max {max(values) * 1e3:7.2f} ms"


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_encoders(rounds: int) -> None:
    pixels = bytes(range(256)) * (W * H * 4 // 256)
    ppm = timed(lambda: encode_ppm(pixels, W, H, W * 4), rounds)
    png = timed(lambda: encode_png(pixels, W, H, W * 4), rounds)
    assert len(encode_ppm(pixels, W, H, W * 4)) == len(b"P6\n1024 768\n255\n") + W * H * 3
    print(
        f"encode PPM {W}x{H}:   {_ms(ppm)}   ({TARGET_SCREENDUMP_MS / (statistics.median(ppm) * 1e3):.0f}x under target)"
    )
    print(
        f"encode PNG {W}x{H}:   {_ms(png)}   ({TARGET_SCREENDUMP_MS / (statistics.median(png) * 1e3):.0f}x under target)"
    )
    info = FramebufferInfo.for_mode(W, H)
    every_other = bytes([0x55]) * info.bitmap_bytes  # worst case: 384 separate bands
    rects = timed(lambda: damage_rects(every_other, info), rounds)
    assert len(damage_rects(every_other, info)) == info.pages // 2
    print(f"damage, 384 bands:      {_ms(rects)}")


async def bench_vmm(rounds: int) -> None:
    elf = build_guest("power_button")
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        cmd = [sys.executable, "-m", "vmgui.vmm", "run", "--kernel", str(elf), "--qmp", sock]
        proc = subprocess.Popen([*cmd, "--serial", "none", "--framebuffer", f"{W}x{H}"])
        try:
            while not os.path.exists(sock):
                assert proc.poll() is None, "vmgui-vmm exited early"
                await asyncio.sleep(0.02)
            client = QMPClient("bench")
            await client.connect(sock)

            async def many(cmd: str, args: dict[str, object] | None, n: int) -> list[float]:
                out = []
                for _ in range(n):
                    t = time.perf_counter()
                    await client.execute(cmd, args)
                    out.append(time.perf_counter() - t)
                return out

            print(f"QMP query-status:       {_ms(await many('query-status', None, rounds * 20))}")
            print(f"QMP x-vmgui-dirty:      {_ms(await many('x-vmgui-dirty', None, rounds * 20))}")
            path = os.path.join(tmp, "s.ppm")
            ppm = await many("screendump", {"filename": path}, rounds)
            assert os.path.getsize(path) == len(b"P6\n1024 768\n255\n") + W * H * 3
            print(f"QMP screendump PPM:     {_ms(ppm)}   (target < {TARGET_SCREENDUMP_MS:.0f} ms)")
            png = await many("screendump", {"filename": path, "format": "png"}, rounds)
            print(f"QMP screendump PNG:     {_ms(png)}")
            await client.execute("quit")
            with contextlib.suppress(EOFError, ConnectionError):
                await client.disconnect()
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    bench_encoders(rounds)
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        asyncio.run(bench_vmm(rounds))
    else:
        print("(no /dev/kvm: skipped the QMP round trips through vmgui-vmm)")


if __name__ == "__main__":
    main()
