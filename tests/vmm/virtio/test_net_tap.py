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
    r = subprocess.run(
        [unshare, "-rn", sys.executable, "-m", "tests.vmm.virtio.tap_roundtrip"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    if "Operation not permitted" in r.stderr and "unshare" in r.stderr:
        need(False, "cannot create a network namespace here (unshare -rn refused)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "tap ok"
