"""Built-in console figures: guest framebuffer write -> widget repaint latency, GUI CPU with a
still console, frames per second and GUI CPU per frame while the guest redraws its whole
1024x768 screen without pause, and GUI RSS with one console open.

The guest is tests/guests/fb_redraw (64-bit ring 3, so it draws at native speed even where KVM
emulates ring 0); frame n fills the screen with one colour, so a pixel tells which frame is
shown. The console is the real ConsoleView on a SharedFramebufferSource over a real vmgui-vmm,
in a window on a private Xvfb when there is one (else Qt's offscreen platform). Latency: a
separate process watches the shared framebuffer (polling every 0.2 ms) and notes when each
frame's colour first appears; the view notes when it paints that colour (both CLOCK_MONOTONIC).
GUI CPU is this process's own CPU time (the VMM and the watcher are other processes).
Targets (issue "Built-in VMs in the GUI"): latency < 16 ms, still console < 1 % of a core,
>= 60 fps.

    .venv/bin/python bench/bench_console.py [seconds-per-run]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mmap
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.console import ConsoleVmm  # noqa: E402
from tests.guests.build import build_guest  # noqa: E402

W, H = 1024, 768
#: Pause loops between frames for the latency run (about 20-40 ms per frame on these hosts).
LATENCY_DELAY = 2_000_000
WATCH_POLL_S = 0.0002


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def watch(sock: str, seconds: float) -> None:
    """Subprocess: print {colour: first time seen} for the framebuffer's first pixel."""
    from vmgui.console.shm_source import receive_framebuffer

    info, fd = receive_framebuffer(sock)
    mm = mmap.mmap(fd, info["size"], mmap.MAP_SHARED, mmap.PROT_READ)
    seen: dict[int, float] = {}
    last = -1
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        v = int.from_bytes(mm[0:4], "little") & 0xFFFFFF
        if v != last:
            seen.setdefault(v, now)
            last = v
        time.sleep(WATCH_POLL_S)
    print(json.dumps(seen))


def start_xvfb() -> subprocess.Popen[bytes] | None:
    if os.environ.get("DISPLAY") or not any(
        os.access(os.path.join(d, "Xvfb"), os.X_OK) for d in os.environ["PATH"].split(":")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return None
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=[w], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(w)
    with os.fdopen(r) as f:
        os.environ["DISPLAY"] = ":" + f.readline().strip()
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return proc


def probed_view_class() -> type:
    from vmgui.ui.console.view import ConsoleView

    class ProbedView(ConsoleView):
        """A ConsoleView that notes when it paints (and gets damage for) each frame colour."""

        def __init__(self) -> None:
            super().__init__()
            self.painted: dict[int, float] = {}
            self.damage_seen: dict[int, float] = {}
            self.paints = 0
            self.damage_events = 0
            self.frames_shown = 0
            self._last = -1

        def colour(self) -> int | None:
            return None if self.image is None else self.image.pixel(0, 0) & 0xFFFFFF

        def paintEvent(self, event: Any) -> None:
            super().paintEvent(event)
            now = time.monotonic()
            self.paints += 1
            colour = self.colour()
            if colour is not None and colour != self._last:
                self._last = colour
                self.frames_shown += 1
                self.painted.setdefault(colour, now)

        def damaged(self, rects: Any) -> None:
            self.damage_events += 1
            colour = self.colour()
            if colour is not None:
                self.damage_seen.setdefault(colour, time.monotonic())
            super().damaged(rects)

    return ProbedView


async def open_console(vmm: ConsoleVmm) -> tuple[Any, Any, Any]:
    from vmgui.console import open_source
    from vmgui.ui.console.view import Scale

    source = open_source(vmm.endpoint)
    await source.start()
    view = probed_view_class()()
    probe = view
    view.attach(source)
    view.set_scale(Scale.ONE_TO_ONE)
    view.resize(W, H)
    view.show()
    return source, view, probe


async def watch_guest(vmm: ConsoleVmm, seconds: float) -> dict[int, float]:
    """{frame colour: when it first appeared in guest memory}, from a watcher process."""
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--watch", vmm.sock, str(seconds),
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    out, _ = await watcher.communicate()
    return {int(k): v for k, v in json.loads(out).items()}


async def run_guest(kernel: Path, tmp: Path, cmdline: str) -> ConsoleVmm:
    tmp = Path(tempfile.mkdtemp(dir=tmp))  # a fresh socket path per VM
    vmm = ConsoleVmm(kernel, tmp, "--framebuffer", f"{W}x{H}", "--cmdline", f"fb={W}x{H} {cmdline}")
    await asyncio.to_thread(vmm.wait_socket)
    await asyncio.to_thread(vmm.read_serial_until, b"redraw ready")
    return vmm


async def still(kernel: Path, tmp: Path, seconds: float) -> None:
    vmm = await run_guest(kernel, tmp, "frames=1")
    try:
        source, view, probe = await open_console(vmm)
        await asyncio.sleep(1.0)  # the one frame, its damage and the window's first exposure
        paints, cpu0, t0 = probe.paints, cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
        print(f"still console      GUI CPU {cpu * 100:5.2f} % of a core   "
              f"paints {probe.paints - paints} in {seconds:.0f} s   (target < 1 %)")  # fmt: skip
        print(f"one console open   GUI RSS {rss_mib():.0f} MiB")
        view.attach(None)
        await source.close()
        view.close()
    finally:
        vmm.close()


async def flat_out(kernel: Path, tmp: Path, seconds: float) -> None:
    vmm = await run_guest(kernel, tmp, "delay=0")
    try:
        source, view, probe = await open_console(vmm)
        await asyncio.sleep(1.0)
        frames, paints, cpu0, t0 = probe.frames_shown, probe.paints, cpu_seconds(), time.monotonic()
        events = probe.damage_events
        guest = await watch_guest(vmm, seconds)
        elapsed = time.monotonic() - t0
        shown, cpu = probe.frames_shown - frames, cpu_seconds() - cpu0
        print(f"full redraws       {shown / elapsed:5.1f} fps shown, {(probe.paints - paints) / elapsed:.1f} "
              f"paints/s; the guest drew {len(guest) / seconds:.1f} frames/s meanwhile   "
              f"(target >= 60 fps)")  # fmt: skip
        print(f"                   damage events {(probe.damage_events - events) / elapsed:.1f}/s "
              f"(the VMM pushes at most 60/s)   GUI CPU {cpu / elapsed * 100:.1f} % of a core, "
              f"{cpu / max(shown, 1) * 1000:.2f} ms per frame shown")  # fmt: skip
        assert shown > 0, "the console showed no frame"
        view.attach(None)
        await source.close()
        view.close()
    finally:
        vmm.close()


async def latency(kernel: Path, tmp: Path, seconds: float) -> None:
    vmm = await run_guest(kernel, tmp, f"delay={LATENCY_DELAY}")
    try:
        source, view, probe = await open_console(vmm)
        await asyncio.sleep(0.5)
        seen = await watch_guest(vmm, seconds)
        await asyncio.sleep(0.2)
        lat = sorted(probe.painted[c] - t for c, t in seen.items() if c in probe.painted)
        dmg = sorted(probe.damage_seen[c] - t for c, t in seen.items() if c in probe.damage_seen)
        missed = sum(1 for c in seen if c not in probe.painted)
        times = sorted(seen.values())
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        assert lat, "no frame was both seen and painted"
        p95 = lat[int(0.95 * (len(lat) - 1))]
        print(f"write -> repaint   median {statistics.median(lat) * 1000:5.1f} ms   p95 "
              f"{p95 * 1000:5.1f} ms   over {len(lat)} frames ~{statistics.median(gaps) * 1000:.0f} "
              f"ms apart ({missed} not painted)   (target < 16 ms)")  # fmt: skip
        if dmg:
            print(
                f"  of which write -> damage event: median {statistics.median(dmg) * 1000:.1f} ms"
            )
        view.attach(None)
        await source.close()
        view.close()
    finally:
        vmm.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--watch":
        watch(sys.argv[2], float(sys.argv[3]))
        return
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    xvfb = start_xvfb()
    try:
        import qasync
        from PySide6.QtWidgets import QApplication

        app = QApplication(sys.argv[:1])
        app.setQuitOnLastWindowClosed(False)  # each run closes its console window
        print(f"platform {app.platformName()}, guest screen {W}x{H}, {seconds:.0f} s per run")
        kernel = build_guest("fb_redraw")
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with tempfile.TemporaryDirectory(prefix="vmgui-bench-") as tmp:

            async def all_runs() -> None:
                await still(kernel, Path(tmp), seconds)
                await flat_out(kernel, Path(tmp), seconds)
                await latency(kernel, Path(tmp), seconds)

            try:
                loop.run_until_complete(all_runs())
            finally:
                loop.close()
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


if __name__ == "__main__":
    main()
