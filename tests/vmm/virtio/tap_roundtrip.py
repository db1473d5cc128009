"""Run inside a private network namespace (`unshare -n`, or `-rn` when not root) by test_net_tap.py: a virtio-net
device on a fresh TAP interface exchanges one frame each way with an AF_PACKET socket on that
interface. Prints "tap ok" on success; any failure is an exception (non-zero exit)."""

from __future__ import annotations

import fcntl
import socket
import struct
import time

from tests.vmm.virtio.driver import DATA_BASE, Buf, Driver
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio.iothread import IoThread
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.net import NET_HDR_SIZE, VirtioNet, stable_mac
from vmgui.vmm.virtio.net_backends import TapBackend

IFNAME = "vmgtap0"
ETHERTYPE = 0x88B5  # IEEE local experimental: nothing else in the namespace speaks it
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def main() -> None:
    mem = GuestMemory.create(4 << 20)
    mac = stable_mac("tap-test")
    net = VirtioNet(TapBackend(IFNAME), mac)
    t = VirtioMmioTransport(net, mem, lambda: None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", IFNAME.encode(), IFF_UP))
    pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    pkt.bind((IFNAME, ETHERTYPE))
    pkt.settimeout(5)
    io = IoThread("tap-test")
    for fd, handler in t.fds():
        io.add_fd(fd, handler)
    io.start()
    try:
        d = Driver(t, mem)
        d.setup()
        rx, tx = d.queues
        for i in range(8):  # the kernel may send its own frames (IPv6 DAD/RS) out first
            rx.submit([Buf(DATA_BASE + 0x10000 + i * 0x800, 0x800, True)])
        d.kick(0)
        out = b"\xff" * 6 + mac + struct.pack("!H", ETHERTYPE) + b"vmgui-tx".ljust(46, b"\0")
        mem.write(DATA_BASE + 0x1000, bytes(NET_HDR_SIZE) + out)
        tx.submit([Buf(DATA_BASE + 0x1000, NET_HDR_SIZE + len(out), False)])
        d.kick(1)
        assert pkt.recv(2048) == out, "guest frame did not come out of the TAP interface"
        into = mac + b"\x02" + bytes(5) + struct.pack("!H", ETHERTYPE) + b"vmgui-rx".ljust(46, b"\0")
        pkt.send(into)
        deadline = time.monotonic() + 5
        received: list[bytes] = []
        while into not in received and time.monotonic() < deadline:
            time.sleep(0.01)
            for head, length in rx.used_entries():
                addr = DATA_BASE + 0x10000 + head * 0x800
                received.append(mem.read(addr + NET_HDR_SIZE, length - NET_HDR_SIZE))
        assert into in received, f"host frame did not reach the guest ({len(received)} others)"
        print("tap ok")
    finally:
        io.stop()
        t.close()
        pkt.close()


if __name__ == "__main__":
    main()
