"""vmgui-vmm vs QEMU microvm on the same PVH test guests, in one run; prints figures and ratios.

    .venv/bin/python bench/bench_vmm.py [--runs N] [--count N]

1. process start -> first serial byte (guest tests/guests/hello.c), median (and min) of N runs,
   alternating the two VMMs. Ours is the command a user types, `vmgui-vmm run --kernel hello.elf`
   (the console script next to this interpreter; defaults: 256M, 1024x768 framebuffer, virtio-rng),
   QEMU gets `-m 256M`. An installed package has compiled bytecode, so our runs use a private
   PYTHONPYCACHEPREFIX filled by one warm-up run; a second row shows the start without any .pyc
   (what PYTHONDONTWRITEBYTECODE=1, set in this sandbox, gives). A breakdown follows: interpreter
   start (with and without `site`, which runs setuptools' editable-install finder in a dev venv),
   importing the modules a run imports, and the rest (KVM set-up, loading, guest to its first byte);
2. port-I/O exits per second: tests/guests/portbench.c writes one port COUNT times between a
   "start" and a "done" line; the host times the two lines (median of N alternating runs);
   and the CPU time each exit costs (user and system, from wait4 of a COUNT run minus a
   0-write run), which other processes' load does not distort the way it does the rate.
   A third VMM, "floor" (bench/vmm_floor.py), is ours with the bench port's exits cut down to
   what any pure-Python VMM pays: one KVM_RUN call and two reads of the kvm_run page;
3. VMM RSS overhead: process RSS minus the guest RAM mapping's resident pages, sampled while
   tests/guests/ticker.c runs.
Asserts only correctness (each guest printed what it must); the figures are for reading.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.guests.build import build_guest  # noqa: E402

MEMORY_MIB = 256
QEMU = [
    "qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-nodefaults", "-display", "none",
    "-no-reboot", "-serial", "stdio", "-device", "i8042", "-m", f"{MEMORY_MIB}M",
]  # fmt: skip
_SCRIPT = Path(sys.executable).parent / "vmgui-vmm"  # the console script, as installed
#: What a user types (the default memory is 256M, like QEMU's -m above).
OURS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "vmgui.vmm"]
#: The modules a default `run` imports (for the breakdown), without and with virtio.
CORE_IMPORTS = "vmgui.vmm.cli, vmgui.vmm.vm_setup, vmgui.vmm.machine"
RUN_IMPORTS = f"{CORE_IMPORTS}, vmgui.vmm.virtio.options, vmgui.vmm.virtio.attach"
#: Bytecode cache for our runs (see the docstring); None = no .pyc at all.
PYCACHE: str | None = None


#: Ours with the cheapest bench-port exit pure Python allows (see the docstring).
FLOOR = [sys.executable, str(REPO / "bench" / "vmm_floor.py")]


def command(vmm: str, kernel: Path) -> list[str]:
    if vmm == "qemu":
        return [*QEMU, "-kernel", str(kernel)]
    return [*(FLOOR if vmm == "floor" else OURS), "run", "--kernel", str(kernel)]


def python_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if PYCACHE is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


def spawn(vmm: str, kernel: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command(vmm, kernel),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=python_env(),
    )


def process_ms(argv: list[str]) -> float:
    """Wall time of a short Python process (for the start-up breakdown), in ms."""
    t0 = time.perf_counter()
    # cwd "/": modules come from PYTHONPATH, as for the console script, not from the cwd
    subprocess.run(argv, check=True, env=python_env(), stdin=subprocess.DEVNULL, cwd="/")
    return (time.perf_counter() - t0) * 1000


def wait_for(
    proc: subprocess.Popen[bytes], marker: bytes, seen: bytearray, timeout: float
) -> float:
    """Read stdout until `marker` is in it; return the time.perf_counter() when it arrived."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} within {timeout}s; got {bytes(seen)!r}")
        if select.select([fd], [], [], 0.5)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"VMM exited before {marker!r}; got {bytes(seen)!r}")
            seen += chunk
    return time.perf_counter()


def finish(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def first_byte(vmm: str, kernel: Path) -> float:
    t0 = time.perf_counter()
    proc = spawn(vmm, kernel)
    seen = bytearray()
    t1 = wait_for(proc, b"h", seen, 30)
    wait_for(proc, b"magic 0x336ec578", seen, 30)
    finish(proc)
    return t1 - t0


def exit_rate(vmm: str, kernel: Path, count: int) -> float:
    proc = spawn(vmm, kernel)
    seen = bytearray()
    t0 = wait_for(proc, b"start\n", seen, 30)
    t1 = wait_for(proc, b"done\n", seen, 600)
    finish(proc)
    return count / (t1 - t0)


def process_cpu(vmm: str, kernel: Path) -> tuple[float, float]:
    """(user, system) CPU seconds of one whole run, from wait4."""
    proc = subprocess.Popen(
        command(vmm, kernel),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=python_env(),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    assert status == 0, f"{vmm} failed"
    return usage.ru_utime, usage.ru_stime


def cpu_per_exit(vmm: str, idle: Path, bench: Path, count: int) -> tuple[float, float]:
    """(user, system) microseconds per port exit: a COUNT run minus a 0-write run."""
    u1, s1 = process_cpu(vmm, bench)
    u0, s0 = process_cpu(vmm, idle)
    return (u1 - u0) / count * 1e6, (s1 - s0) / count * 1e6


def rss_overhead(vmm: str, kernel: Path) -> tuple[int, int]:
    """(process RSS, RSS minus the guest RAM mapping's resident bytes), in bytes."""
    proc = spawn(vmm, kernel)
    try:
        wait_for(proc, b"tick 2\n", bytearray(), 60)
        total, guest = 0, 0
        size_kib = MEMORY_MIB * 1024
        current_size = 0
        with open(f"/proc/{proc.pid}/smaps") as f:
            for line in f:
                field, _, rest = line.partition(":")
                if field == "Size":
                    current_size = int(rest.split()[0])
                elif field == "Rss":
                    rss = int(rest.split()[0]) * 1024
                    total += rss
                    if current_size >= size_kib:
                        guest += rss
        return total, total - guest
    finally:
        proc.kill()
        finish(proc)


def start_up(hello: Path, runs: int, row: Callable[..., None]) -> None:
    """Process start -> first serial byte, with the breakdown (see the docstring)."""
    global PYCACHE
    first_byte("ours", hello)  # warm-up: fills the bytecode cache, like an install would
    ms: dict[str, list[float]] = {"ours": [], "qemu": []}
    for _ in range(runs):
        for v in ms:
            ms[v].append(first_byte(v, hello) * 1000)
    qemu = statistics.median(ms["qemu"])
    row("start -> first serial byte (ms)", statistics.median(ms["ours"]), qemu, ".1f", "lower")
    row("  same, min of runs (ms)", min(ms["ours"]), min(ms["qemu"]), ".1f", "lower")
    saved, PYCACHE = PYCACHE, None
    try:
        cold = statistics.median(first_byte("ours", hello) * 1000 for _ in range(runs))
    finally:
        PYCACHE = saved
    row("  same, no .pyc at all (ms)", cold, qemu, ".1f", "lower")
    # Each step is a whole process doing a prefix of what a run does. Rounds interleave the
    # steps and a full run so load from other processes hits all alike; min of rounds.
    py = sys.executable
    steps = [
        ("interpreter without site (python -S)", [py, "-S", "-c", "pass"]),
        ("+ site (dev venv: editable-install finder)", [py, "-c", "pass"]),
        ("+ import the VMM core (cli, machine, ...)", [py, "-c", f"import {CORE_IMPORTS}"]),
        ("+ import vmgui.vmm.virtio (default rng)", [py, "-c", f"import {RUN_IMPORTS}"]),
    ]
    samples: list[list[float]] = [[] for _ in range(len(steps) + 1)]
    for _ in range(runs):
        for i, (_, cmd) in enumerate(steps):
            samples[i].append(process_ms(cmd))
        samples[-1].append(first_byte("ours", hello) * 1000)
    print("  breakdown of ours (ms, min of runs; KVM set-up overlaps the imports on a thread;")
    print("  separate processes, so under load the last step can come out a few ms negative):")
    before = 0.0
    names = [what for what, _ in steps] + ["+ KVM set-up left, load, guest to first byte"]
    for what, values in zip(names, samples, strict=True):
        total = min(values)
        print(f"    {what:46}{total - before:>+8.1f}  = {total:6.1f}")
        before = total


def main() -> None:
    global PYCACHE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args()
    if shutil.which("qemu-system-x86_64") is None:
        sys.exit("qemu-system-x86_64 is not installed")
    hello = build_guest("hello")
    bench = build_guest("portbench", (f"-DPORTBENCH_COUNT={args.count}",))
    ticker = build_guest("ticker")

    print(f"{'':34}{'vmgui-vmm':>12}{'qemu':>12}{'ratio':>8}")

    def row(what: str, ours: float, qemu: float, fmt: str, better: str) -> None:
        ratio = ours / qemu if qemu else float("nan")
        print(f"{what:34}{ours:>12{fmt}}{qemu:>12{fmt}}{ratio:>7.2f}x  ({better} is better)")

    pycache = tempfile.TemporaryDirectory(prefix="bench-vmm-pyc-")
    PYCACHE = pycache.name
    start_up(hello, args.runs, row)
    # Alternate the two VMMs so load from other processes hits both alike; report medians.
    samples: dict[str, list[float]] = {"ours": [], "qemu": [], "floor": []}
    for _ in range(args.runs):
        for v in samples:
            samples[v].append(exit_rate(v, bench, args.count))
    rates = {v: statistics.median(r) for v, r in samples.items()}
    row(f"port-I/O exits/s ({args.count} outs)", rates["ours"], rates["qemu"], ",.0f", "higher")
    for v in ("ours", "qemu"):
        print(f"  {v} runs: " + ", ".join(f"{r:,.0f}" for r in samples[v]))
    row("  pure-Python floor, exits/s", rates["floor"], rates["qemu"], ",.0f", "higher")
    idle = build_guest("portbench", ("-DPORTBENCH_COUNT=0",))
    cpu: dict[str, list[tuple[float, float]]] = {"ours": [], "qemu": [], "floor": []}
    for _ in range(args.runs):
        for v in cpu:
            cpu[v].append(cpu_per_exit(v, idle, bench, args.count))
    user = {v: statistics.median(u for u, _ in c) for v, c in cpu.items()}
    system = {v: statistics.median(s for _, s in c) for v, c in cpu.items()}
    row("  CPU per exit, user (us)", user["ours"], user["qemu"], ".2f", "lower")
    row("  CPU per exit, system (us)", system["ours"], system["qemu"], ".2f", "lower")
    row(
        "  CPU per exit, total (us)",
        user["ours"] + system["ours"],
        user["qemu"] + system["qemu"],
        ".2f",
        "lower",
    )
    row("  floor: CPU per exit, user (us)", user["floor"], user["qemu"], ".2f", "lower")
    rss = {v: rss_overhead(v, ticker) for v in ("ours", "qemu")}
    row("process RSS (MiB)", rss["ours"][0] / 2**20, rss["qemu"][0] / 2**20, ".1f", "lower")
    row("VMM RSS overhead (MiB)", rss["ours"][1] / 2**20, rss["qemu"][1] / 2**20, ".1f", "lower")
    pycache.cleanup()


if __name__ == "__main__":
    main()
