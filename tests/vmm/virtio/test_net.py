"""virtio-net through a real passt process: an ARP request out of the tx queue, passt's reply
in on the rx queue (we only ever talk to passt itself)."""

from __future__ import annotations

import logging
import os
import struct
import time
from pathlib import Path

import pytest

from tests.support import need_tool
from tests.vmm.virtio.driver import DATA_BASE, Buf, Driver
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.virtio.iothread import IoThread
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.net import NET_HDR_SIZE, VirtioNet, parse_mac, stable_mac
from vmgui.vmm.virtio.net_backends import (
    NetBackendError,
    PasstBackend,
    TapBackend,
    open_backend,
)

GUEST_IP = bytes([192, 0, 2, 2])
ROUTER_IP = bytes([192, 0, 2, 1])


def arp_request(mac: bytes) -> bytes:
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + GUEST_IP + bytes(6) + ROUTER_IP
    return (b"\xff" * 6 + mac + b"\x08\x06" + arp).ljust(60, b"\0")


def test_arp_through_passt(mem: GuestMemory) -> None:
    passt = need_tool("passt")
    mac = stable_mac("test-vm")
    backend = PasstBackend(passt)
    net = VirtioNet(backend, mac)
    irqs: list[int] = []
    t = VirtioMmioTransport(net, mem, lambda: irqs.append(1))
    io = IoThread("virtio-net-test")
    for fd, handler in t.fds():
        io.add_fd(fd, handler)
    io.start()
    try:
        d = Driver(t, mem)
        d.setup()
        assert d.t.read(0x100, 4) | d.t.read(0x104, 2) << 32 == int.from_bytes(mac, "little")
        rx, tx = d.queues
        for i in range(4):
            rx.submit([Buf(DATA_BASE + i * 0x800, 0x800, True)])
        d.kick(0)
        frame = arp_request(mac)
        mem.write(DATA_BASE + 0x4000, bytes(NET_HDR_SIZE) + frame)
        tx.submit([Buf(DATA_BASE + 0x4000, NET_HDR_SIZE + len(frame), False)])
        d.kick(1)
        assert tx.used_entries() == [(0, 0)]
        deadline = time.monotonic() + 5
        replies: list[tuple[int, int]] = []
        while not replies and time.monotonic() < deadline:
            time.sleep(0.01)
            replies = rx.used_entries()
        assert replies, "no frame from passt within 5 s"
        head, length = replies[0]
        got = mem.read(DATA_BASE + head * 0x800, length)
        assert got[:NET_HDR_SIZE] == struct.pack("<6H", 0, 0, 0, 0, 0, 1)
        eth = got[NET_HDR_SIZE:]
        assert eth[0:6] == mac and eth[12:14] == b"\x08\x06"
        op, sender_ip = struct.unpack("!H", eth[20:22])[0], eth[28:32]
        assert (op, sender_ip) == (2, ROUTER_IP)  # ARP reply: 192.0.2.1 is-at ...
        assert irqs and net.tx_frames == 1 and net.rx_frames >= 1
        # What the VM's network graph shows (x-vmgui-stats "net"): frames, not virtio headers.
        section, counters = net.byte_counters()
        assert section == "net" and counters["tx_bytes"] == len(frame)
        assert counters["rx_bytes"] >= len(eth)
    finally:
        io.stop()
        t.close()
    assert backend.process.poll() is not None  # passt is gone with the device


def test_stable_mac_is_local_unicast_and_deterministic() -> None:
    a = stable_mac("vm-a")
    assert a == stable_mac("vm-a") != stable_mac("vm-b")
    assert a[0] & 0x02 and not a[0] & 0x01
    assert parse_mac("52:54:00:12:34:56") == bytes.fromhex("525400123456")
    for bad in ("52:54:00:12:34", "zz:54:00:12:34:56", "01:00:5e:00:00:01"):
        with pytest.raises(ValueError):
            parse_mac(bad)


def test_unknown_backend_and_bad_tap_name_are_refused() -> None:
    assert open_backend("none") is None
    with pytest.raises(NetBackendError, match="unknown network backend"):
        open_backend("vde")
    with pytest.raises(NetBackendError, match="invalid TAP"):
        open_backend("tap:" + "x" * 20)


def test_tx_frames_too_short_or_long_are_dropped(mem: GuestMemory) -> None:
    passt = need_tool("passt")
    net = VirtioNet(PasstBackend(passt), stable_mac("x"))
    t = VirtioMmioTransport(net, mem, lambda: None)
    try:
        d = Driver(t, mem)
        d.setup()
        tx = d.queues[1]
        tx.submit([Buf(DATA_BASE, NET_HDR_SIZE + 4, False)])
        tx.submit([Buf(DATA_BASE, NET_HDR_SIZE + 9000, False)])
        d.kick(1)
        assert len(tx.used_entries()) == 2
        assert (net.tx_frames, net.tx_dropped) == (0, 2)
    finally:
        t.close()


def test_a_passt_that_cannot_start_is_reported_with_its_reason(tmp_path: Path) -> None:
    """Where passt cannot sandbox itself (e.g. no user namespaces) it exits at once: the VMM
    must say so, with passt's own reason, instead of leaving the guest waiting in silence."""
    fake = tmp_path / "passt"
    fake.write_text(
        "#!/bin/sh\necho \"Couldn't create user namespace: Operation not permitted\" >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    backend = PasstBackend(str(fake))
    try:
        deadline = time.monotonic() + 10
        while not backend.peer_gone and time.monotonic() < deadline:
            assert backend.recv_frames() == []
            time.sleep(0.02)
        assert backend.peer_gone
        assert backend.failure == (
            "passt stopped (exit status 1): Couldn't create user namespace: "
            "Operation not permitted; the guest has no network"
        )
    finally:
        backend.close()


def test_a_tap_write_error_returns_every_tx_buffer_and_logs_one_line(
    mem: GuestMemory, caplog: pytest.LogCaptureFixture
) -> None:
    """The TAP fd fails every write with an errno nobody anticipated (EPIPE here, through a
    real pipe whose reader is gone): each frame is dropped, each TX buffer still goes back to
    the guest, the device keeps working, and the log gets one line, not a traceback per kick."""
    r, w = os.pipe()
    os.close(r)
    tap = TapBackend.__new__(TapBackend)  # the fd of a TAP device, minus /dev/net/tun
    tap.fd, tap.name, tap.dropped, tap.send_errors = w, "vmgtap0", 0, set()
    net = VirtioNet(tap, stable_mac("x"))
    t = VirtioMmioTransport(net, mem, lambda: None)
    caplog.set_level(logging.WARNING)
    try:
        d = Driver(t, mem)
        d.setup()
        tx = d.queues[1]
        mem.write(DATA_BASE + NET_HDR_SIZE, arp_request(stable_mac("x")))
        for _ in range(3):
            tx.submit([Buf(DATA_BASE, NET_HDR_SIZE + 60, False)])
            d.kick(1)
        assert len(tx.used_entries()) == 3
        assert (net.tx_frames, net.tx_dropped, tap.dropped) == (0, 3, 3)
        assert not d.needs_reset() and t.stats.internal_errors == 0
        [line] = caplog.records
        assert "vmgtap0" in line.getMessage() and line.exc_info is None
    finally:
        t.close()
