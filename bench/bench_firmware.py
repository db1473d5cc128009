"""Firmware boot: process start -> GRUB menu on screen, ours vs QEMU microvm on the same ISO.

Builds a GRUB ISO (grub-mkrescue) whose menu waits forever, then boots it with
`vmgui-vmm run --firmware seabios` and with `qemu-system-x86_64 -M microvm -bios
bios-microvm.bin -device ramfb` (one after the other, same ISO, same RAM). "On screen" means a
QMP screendump of the display shows the menu (at least MENU_ROWS lit 16-pixel text rows); both
are polled the same way. Also prints our exits per second during the firmware stage (KVM exits to
the VMM from start to the menu, from x-vmgui-stats). Asserts that both reach the menu.

    python bench/bench_firmware.py [RUNS]
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, QMPClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.guests.grub_iso import build_grub_iso, lit_text_rows  # noqa: E402
from vmgui.vmm.firmware.image import SEABIOS_MICROVM  # noqa: E402

GRUB_CFG = """\
serial --unit=0 --speed=115200
terminal_output serial console
set timeout=-1
menuentry "First entry" {
  echo MARKER-FIRST
}
menuentry "Second entry" {
  echo MARKER-SECOND
}
"""
MENU_ROWS = 10
TIMEOUT = 600.0
POLL = 0.5
MEMORY = "128M"


async def _menu_time(sock: Path, proc: subprocess.Popen[bytes], start: float,
                     dump: Path) -> tuple[float, dict[str, Any] | None]:
    while True:
        client = QMPClient("bench")
        try:
            await client.connect(str(sock))
            break
        except (OSError, ConnectError):
            if proc.poll() is not None or time.monotonic() - start > TIMEOUT:
                raise RuntimeError("the VMM did not open its QMP socket") from None
            await asyncio.sleep(0.02)
    try:
        while time.monotonic() - start < TIMEOUT:
            await client.execute("screendump", {"filename": str(dump)})
            if lit_text_rows(dump) >= MENU_ROWS:
                elapsed = time.monotonic() - start
                stats = None
                if "x-vmgui-stats" in {c["name"] for c in await client.execute("query-commands")}:
                    stats = await client.execute("x-vmgui-stats")
                return elapsed, stats
            await asyncio.sleep(POLL)
        raise RuntimeError(f"no menu on screen within {TIMEOUT:.0f} s")
    finally:
        await client.disconnect()


def boot(argv: list[str], work: Path) -> tuple[float, dict[str, Any] | None]:
    sock = work / "qmp.sock"
    sock.unlink(missing_ok=True)
    start = time.monotonic()
    proc = subprocess.Popen([*argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(_menu_time(sock, proc, start, work / "screen.ppm"))
    finally:
        proc.kill()
        proc.wait()


def ours(iso: Path, work: Path) -> list[str]:
    return [sys.executable, "-m", "vmgui.vmm", "run", "--firmware", "seabios", "--memory", MEMORY,
            "--disk", f"{iso},ro", "--no-rng", "--serial", "none", "--qmp", str(work / "qmp.sock")]


def qemu(iso: Path, work: Path) -> list[str]:
    return ["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-m", MEMORY, "-nodefaults",
            "-display", "none", "-bios", SEABIOS_MICROVM, "-device", "ramfb",
            "-global", "virtio-mmio.force-legacy=false",
            "-drive", f"id=d0,file={iso},format=raw,if=none,readonly=on",
            "-device", "virtio-blk-device,drive=d0", "-serial", "null",
            "-qmp", f"unix:{work / 'qmp.sock'},server=on,wait=off"]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    if shutil.which("qemu-system-x86_64") is None:
        sys.exit("qemu-system-x86_64 is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-fw-") as tmp:
        work = Path(tmp)
        iso = build_grub_iso(work, GRUB_CFG)
        ours_s, qemu_s, rates = [], [], []
        for _ in range(runs):
            t, stats = boot(ours(iso, work), work)
            ours_s.append(t)
            assert stats is not None
            exits = sum(sum(v["exits"].values()) for v in stats["vcpus"])
            rates.append(exits / stats["uptime"])
            print(f"ours: menu on screen after {t:6.2f} s ({exits} exits, "
                  f"{rates[-1]:.0f} exits/s, port 0x92 reads {stats['pio']['unhandled'].get('0x92', 0)})")
            t, _ = boot(qemu(iso, work), work)
            qemu_s.append(t)
            print(f"qemu: menu on screen after {t:6.2f} s")
    o, q = statistics.median(ours_s), statistics.median(qemu_s)
    print(f"median over {runs} run(s): ours {o:.2f} s, QEMU microvm {q:.2f} s, "
          f"ratio ours/QEMU {o / q:.2f}x; ours {statistics.median(rates):.0f} exits/s while booting")


if __name__ == "__main__":
    main()
