"""virtio-blk throughput: the same guest and raw image under vmgui-vmm and under QEMU microvm.

The guest (tests/guests/virtio_guest.c, mode "bench") reads the image sequentially with 64 KiB
and 1 MiB requests and then does 4 KiB reads at random sectors, one request in flight, polling
the used ring (same code path on both VMMs). It prints "T <phase>" / "E <phase>" lines; we
timestamp them as they arrive on the serial console, so guest boot and VMM start-up are excluded.
Both VMMs read through the host page cache (QEMU's default cache=writeback; we use plain preadv),
and the image is read once beforehand so neither pays for the disk.

Usage: .venv/bin/python -m bench.bench_virtio [--mb 64] [--rq 2000] [--rounds 3]
Prints MB/s and requests/s per VMM and the ratios ours/QEMU. Asserts only that every request
succeeded.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.guests.build import build_guest

PHASES = ("seq64k", "seq1m", "rand4k")
QEMU_SLOTS = "vscan=0xfeb00000,0x200,24"  # microvm's virtio-mmio transports; not on the cmdline


def timed_lines(cmd: list[str], timeout: float) -> dict[str, tuple[float, str]]:
    """Run `cmd`; for each 'T x'/'E x ...' line, when it arrived and what it said."""
    marks: dict[str, tuple[float, str]] = {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        for raw in proc.stdout:
            now = time.monotonic()
            line = raw.decode(errors="replace").strip()
            m = re.match(r"^([TE]) (\w+)", line)
            if m:
                marks[f"{m.group(1)} {m.group(2)}"] = (now, line)
            if "blk missing" in line:
                raise SystemExit(f"guest found no disk: {' '.join(cmd)}")
            if now > deadline:
                raise SystemExit(f"timed out: {' '.join(cmd)}")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}: {err.strip()}")
    return marks


def results(marks: dict[str, tuple[float, str]], mb: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for phase in PHASES:
        start, _ = marks[f"T {phase}"]
        end, line = marks[f"E {phase}"]
        m = re.search(r"n=(\d+) bad=(\d+)", line)
        assert m is not None and m.group(2) == "0", f"{phase}: failed requests: {line}"
        seconds = end - start
        out[phase] = (mb / seconds) if phase.startswith("seq") else int(m.group(1)) / seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=64, help="MiB per sequential phase (image size)")
    ap.add_argument("--rq", type=int, default=2000, help="random 4 KiB reads")
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs; medians reported")
    args = ap.parse_args()
    qemu = shutil.which("qemu-system-x86_64")
    guest = build_guest("virtio_guest")
    bench_cmdline = f"vt=bench mb={args.mb} rq={args.rq}"
    with tempfile.TemporaryDirectory(prefix="vmgui-bench-") as tmp:
        image = Path(tmp) / "disk.raw"
        with open(image, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        image.read_bytes()  # warm the page cache for both runs
        ours_cmd = [sys.executable, "-m", "vmgui.vmm", "run", "--kernel", str(guest),
                    "--memory", "64M", "--framebuffer", "none", "--no-rng",
                    "--disk", str(image), "--cmdline", bench_cmdline]
        qemu_cmd: list[str] = []
        if qemu:
            qemu_cmd = [qemu, "-M", "microvm", "-enable-kvm", "-nodefaults", "-display", "none",
                        "-no-reboot", "-serial", "stdio", "-device", "i8042", "-m", "64M",
                        "-global", "virtio-mmio.force-legacy=false",
                        "-drive", f"id=d0,file={image},format=raw,if=none",
                        "-device", "virtio-blk-device,drive=d0",
                        "-kernel", str(guest), "-append", f"{bench_cmdline} {QEMU_SLOTS}"]
        ours_runs, qemu_runs = [], []
        for _ in range(args.rounds):  # alternate, so a busy moment on the host hits both
            ours_runs.append(results(timed_lines(ours_cmd, 600), args.mb))
            if qemu_cmd:
                qemu_runs.append(results(timed_lines(qemu_cmd, 600), args.mb))
    ours = {p: statistics.median(r[p] for r in ours_runs) for p in PHASES}
    theirs = {p: statistics.median(r[p] for r in qemu_runs) for p in PHASES} if qemu_runs else None
    units = {"seq64k": "MB/s", "seq1m": "MB/s", "rand4k": "req/s"}
    labels = {"seq64k": "sequential read, 64 KiB requests", "seq1m": "sequential read, 1 MiB requests",
              "rand4k": "random 4 KiB reads"}
    print(f"virtio-blk, {args.mb} MiB image, {args.rq} random reads, one request in flight, "
          f"median of {args.rounds} alternating runs")
    print(f"{'':36s} {'vmgui-vmm':>12s} {'QEMU microvm':>14s} {'ratio':>7s}")
    for phase in PHASES:
        q = f"{theirs[phase]:10.0f} {units[phase]:>5s}" if theirs else f"{'n/a':>14s}"
        ratio = f"{ours[phase] / theirs[phase]:6.2f}x" if theirs else "   n/a"
        print(f"{labels[phase]:36s} {ours[phase]:7.0f} {units[phase]:>5s} {q} {ratio}")
    if not qemu:
        print("qemu-system-x86_64 not found: no reference figures")


if __name__ == "__main__":
    main()
