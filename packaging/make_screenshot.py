"""Regenerate resources/screenshot.png: the app photographs itself under a private Xvfb.

    .venv/bin/python packaging/make_screenshot.py [OUT.png]

Uses libvirt's test:/// driver with a small made-up inventory, so the picture is the same on
every machine and needs no daemon.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
# (name, MiB, vCPUs, virDomainState: 1 running, 3 paused, 5 shut off, 6 crashed)
INVENTORY = [
    ("alpine-router", 256, 1, 1),
    ("archlinux-dev", 4096, 4, 1),
    ("build-worker-01", 8192, 4, 1),
    ("build-worker-02", 8192, 4, 3),
    ("debian-12-server", 2048, 2, 1),
    ("fedora-41-workstation", 4096, 2, 5),
    ("freebsd-14", 1024, 2, 5),
    ("k8s-node-1", 4096, 2, 1),
    ("k8s-node-2", 4096, 2, 1),
    ("nixos-test", 2048, 2, 6),
    ("opensuse-tumbleweed", 2048, 2, 5),
    ("rhel-9-db", 16384, 8, 1),
    ("ubuntu-24.04-ci", 4096, 4, 3),
    ("windows-11", 8192, 4, 5),
]


def inventory_xml() -> str:
    doms = [
        f"<domain type='test' xmlns:test='{TEST_NS}'><name>{name}</name>"
        f"<uuid>{uuid.uuid5(uuid.NAMESPACE_DNS, name)}</uuid>"
        f"<memory unit='MiB'>{mib}</memory><vcpu>{cpus}</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        f"<test:runstate>{state}</test:runstate></domain>"
        for name, mib, cpus, state in INVENTORY
    ]
    return "<node>\n" + "\n".join(doms) + "\n</node>\n"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "resources" / "screenshot.png")
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        demo.mkdir()
        node = demo / "inventory.xml"
        node.write_text(inventory_xml())
        read_fd, write_fd = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24",
             "-nolisten", "tcp"],
            pass_fds=[write_fd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        try:
            with os.fdopen(read_fd) as f:
                display = ":" + f.readline().strip()
            env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb",
                       XDG_CONFIG_HOME=str(Path(tmp) / "config"))
            return subprocess.run(
                [sys.executable, "-m", "vmgui.app", "--connect", f"test://{node}",
                 "--screenshot", str(out)], env=env, timeout=120,
            ).returncode
        finally:
            xvfb.terminate()
            xvfb.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
