"""virtio-net on a TAP device, in a private network namespace so nothing on the host is touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import need, need_tool

REPO = Path(__file__).resolve().parents[3]


def test_frames_cross_a_tap_interface_both_ways() -> None:
    unshare = need_tool("unshare")
    need(os.access("/dev/net/tun", os.R_OK | os.W_OK), "/dev/net/tun is not read/writable")
    # Root needs no user namespace (some containers and chroots refuse to make one).
    flags = "-n" if os.geteuid() == 0 else "-rn"
    r = subprocess.run(
        [unshare, flags, sys.executable, "-m", "tests.vmm.virtio.tap_roundtrip"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    if "Operation not permitted" in r.stderr and "unshare" in r.stderr:
        need(False, f"cannot create a network namespace here (unshare {flags} refused)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "tap ok"
