"""Build freestanding test guests (C + assembly) into PVH ELF images with gcc -m32.

`build_guest("hello")` compiles tests/guests/hello.c (or hello.S) together with the shared
runtime (runtime/entry.S, runtime/runtime.c) and returns the ELF path. Builds are cached by a
hash of every input (sources, flags, layout constants, gcc version), so a test session pays for
each guest once. Every integer in vmgui/vmm/layout.py reaches C as LAYOUT_<NAME>.

The flags keep guests to plain integer code: this machine's KVM emulates guest ring 0 and
fails on SSE/x87 state instructions, popcnt and friends (docs/architecture.md, "Test guests").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from vmgui.vmm import layout

GUEST_DIR = Path(__file__).resolve().parent
RUNTIME_DIR = GUEST_DIR / "runtime"
RUNTIME_SOURCES = (RUNTIME_DIR / "entry.S", RUNTIME_DIR / "runtime.c")
LOAD_ADDRESS = 0x100000
#: Where runtime.c's ap_start() copies the real-mode AP trampoline (SIPI vector 0x10).
AP_TRAMPOLINE = 0x10000

CFLAGS = (
    "-m32",
    "-O2",
    "-ffreestanding",
    "-nostdlib",
    "-static",
    "-no-pie",
    "-fno-pic",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-mno-sse",
    "-mno-mmx",
    "-mgeneral-regs-only",
    "-march=i686",
    "-Wall",
    "-Wl,--build-id=none",
    f"-Wl,-Ttext-segment={LOAD_ADDRESS:#x}",
    "-Wl,-z,max-page-size=0x1000",
    "-Wl,-z,noexecstack",
    "-Wl,--no-warn-rwx-segments",
)


class GuestBuildError(Exception):
    """gcc failed; the message carries its output."""


def layout_defines() -> list[str]:
    names = sorted(n for n, v in vars(layout).items() if n.isupper() and isinstance(v, int))
    return [f"-DLAYOUT_{n}={getattr(layout, n):#x}" for n in names] + [
        f"-DAP_TRAMPOLINE={AP_TRAMPOLINE:#x}"
    ]


def cache_dir() -> Path:
    return Path(os.environ.get("VMGUI_GUEST_CACHE") or Path(tempfile.gettempdir()) / "vmgui-guests")


def guest_source(name: str) -> list[Path]:
    """The guest's own source files: <name>.c and/or <name>.S."""
    found = [p for p in (GUEST_DIR / f"{name}.c", GUEST_DIR / f"{name}.S") if p.exists()]
    if not found:
        raise GuestBuildError(f"no test guest named {name!r} in {GUEST_DIR}")
    return found


def _gcc_version(gcc: str) -> bytes:
    return subprocess.run([gcc, "--version"], capture_output=True, check=True).stdout


def build_guest(name: str, extra_cflags: tuple[str, ...] = (), out_dir: Path | None = None) -> Path:
    """Compile guest `name` (cached) and return the path of its PVH ELF image."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise GuestBuildError("gcc is not installed (./setup.sh test installs gcc-multilib)")
    sources = [*RUNTIME_SOURCES, *guest_source(name)]
    cflags = CFLAGS
    if any(f.startswith("-Wl,-Ttext=") for f in extra_cflags):  # the other common link recipe
        cflags = tuple(f for f in CFLAGS if not f.startswith("-Wl,-Ttext-segment="))
    args = [*cflags, *extra_cflags, *layout_defines(), f"-I{RUNTIME_DIR}"]
    h = hashlib.sha256(_gcc_version(gcc))
    for a in args:
        h.update(a.encode() + b"\0")
    for src in [*sources, RUNTIME_DIR / "runtime.h"]:
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    target_dir = out_dir or cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}-{h.hexdigest()[:16]}.elf"
    if target.exists():
        return target
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(
        [gcc, *args, "-o", str(tmp), *map(str, sources)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise GuestBuildError(f"building guest {name!r} failed:\n{proc.stderr}")
    os.replace(tmp, target)  # atomic: parallel test workers never see half a file
    return target


if __name__ == "__main__":
    import sys

    for guest in sys.argv[1:]:
        print(build_guest(guest))
