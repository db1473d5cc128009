"""Run the real `vmgui-vmm` process (python -m vmgui.vmm) for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VMM = [sys.executable, "-m", "vmgui.vmm"]


def vmm_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_vmm(
    *args: str | os.PathLike[str],
    stdin: bytes = b"",
    timeout: float = 30,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `vmgui-vmm run ARGS` to completion (framebuffer off unless ARGS say otherwise)."""
    argv = [*VMM, "run", *map(str, args)]
    if "--framebuffer" not in argv:
        argv += ["--framebuffer", "none"]
    return subprocess.run(
        argv, input=stdin, capture_output=True, timeout=timeout, env=env or vmm_env(), check=False
    )


def start_vmm(*args: str | os.PathLike[str], **popen: object) -> subprocess.Popen[bytes]:
    """Start `vmgui-vmm run ARGS` with piped stdin/stdout/stderr; the caller must end it."""
    argv = [*VMM, "run", *map(str, args)]
    if "--framebuffer" not in argv:
        argv += ["--framebuffer", "none"]
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=vmm_env(),
        **popen,  # type: ignore[arg-type]
    )


def read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 20) -> bytes:
    """Read the VMM's stdout until `marker` appears; AssertionError with what came otherwise."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline or (proc.poll() is not None and not _readable(proc)):
            raise AssertionError(f"no {marker!r} in VMM output: {seen[-500:]!r}")
        chunk = _read(proc)
        if chunk:
            seen += chunk
        else:
            time.sleep(0.01)
    return seen


def _read(proc: subprocess.Popen[bytes]) -> bytes:
    assert proc.stdout is not None
    try:
        return os.read(proc.stdout.fileno(), 65536)
    except BlockingIOError:
        return b""


def _readable(proc: subprocess.Popen[bytes]) -> bool:
    import select

    assert proc.stdout is not None
    return bool(select.select([proc.stdout], [], [], 0)[0])


def stop_vmm(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 10) -> int:
    """End a VMM started by start_vmm, or any child process (SIGTERM, then SIGKILL); return its
    exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            f.close()
    return proc.returncode
