"""Security review: what a guest or a local QMP client must not be able to do to the VMM
(see docs/architecture.md): crash it, make it touch memory outside guest RAM, hang it, grow it without bound.
Each test drives the real code (real sockets to a real QmpServer, real GuestMemory)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import need_kvm
from tests.vmm.test_qmp_protocol import FakeMachine, RawClient
from tests.vmm.virtio.driver import DATA_BASE, Driver
from vmgui.vmm.config import MachineConfig
from vmgui.vmm.machine import Machine
from vmgui.vmm.memory import GuestMemory
from vmgui.vmm.qmp import QmpServer
from vmgui.vmm.qmp_commands import MAX_HOLD_MS, MAX_INPUT_QUEUED
from vmgui.vmm.vcpu import install_kick_handler
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.net import VirtioNet, stable_mac
from vmgui.vmm.virtio.net_backends import StreamBackend
from vmgui.vmm.virtio.queue import VIRTQ_DESC_F_NEXT


def test_qmp_replies_to_a_client_that_never_reads_are_bounded_in_bytes(server: QmpServer) -> None:
    """Every reply echoes the request's `id`; MAX_QUEUED bounds queued replies by count only,
    so ~1 MiB ids (no negotiation needed) made the server queue ~1 MiB per request, up to
    4096 x 1 MiB per client. The server must hang up long before that."""
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(server.path)
    request = json.dumps({"execute": "query-status", "id": "x" * 1_000_000}).encode()
    count = 40
    try:
        for _ in range(count):
            stuck.sendall(request)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server already hung up on us: what we want
    stuck.settimeout(10)
    received = 0
    try:
        while chunk := stuck.recv(1 << 16):  # drains what was sent, then must see EOF
            received += len(chunk)
    except ConnectionResetError:
        pass
    finally:
        stuck.close()
    assert received < count * len(request) // 2
    c = RawClient(server.path)  # everyone else is still served
    try:
        c.recv()
        assert c.execute("qmp_capabilities") == {"return": {}}
    finally:
        c.close()


def test_qmp_keyboard_queue_is_bounded(server: QmpServer, machine: FakeMachine) -> None:
    """send-key with the maximum hold-time queues key events far faster than the input loop
    (one hold per request) drains them: without a bound the queue grows for as long as the
    client keeps sending. Beyond the bound, send-key must be refused, whole (no stuck keys)."""
    c = RawClient(server.path)
    try:
        c.recv()
        c.execute("qmp_capabilities")
        key = {"execute": "send-key",
               "arguments": {"keys": [{"type": "qcode", "data": "a"}], "hold-time": MAX_HOLD_MS}}
        batch = 500
        refused = 0
        for _ in range(12):  # 6000 requests = 12000 key events
            c.send(json.dumps(key).encode() * batch)
            for _ in range(batch):
                reply = c.recv()
                while "event" in reply:
                    reply = c.recv()
                refused += "error" in reply
        assert refused > 0
        assert server.keyboard is not None and server.keyboard.qsize() <= MAX_INPUT_QUEUED
    finally:
        c.close()


def test_queued_qmp_system_resets_rebuild_the_machine_once(
    build_guest: Callable[..., Path],
) -> None:
    """QMP system_reset posts a "host-reset" to the main thread, and each one rebuilt the whole
    Board (new VM, memory, vCPUs): a client sending resets faster than a rebuild takes grew the
    request queue without bound and kept the VMM rebooting long after it stopped. Pending
    resets must collapse into one, as guest resets already do."""
    need_kvm()
    install_kick_handler()
    cfg = MachineConfig(kernel=str(build_guest("ticker")), framebuffer=None,
                        serial=())
    m = Machine(cfg)
    try:
        m._install(m._new_board())
        for _ in range(1000):
            m.runtime.reset()  # what the QMP system_reset command calls
        before = m.board
        m._handle(*m._requests.popleft())
        assert m.board is not before
        assert list(m._requests) == []
    finally:
        m._shutdown()


def test_system_resets_during_a_restart_do_not_crash_the_main_loop(
    build_guest: Callable[..., Path],
) -> None:
    """The restart filtered the request deque by iterating it while the QMP thread may append
    to it: "deque mutated during iteration" escaped the main loop and ended the VMM."""
    need_kvm()
    install_kick_handler()
    cfg = MachineConfig(kernel=str(build_guest("ticker")), framebuffer=None,
                        serial=())
    m = Machine(cfg)
    stop = threading.Event()

    def spam() -> None:  # a QMP client sending system_reset as fast as it can
        while not stop.is_set():
            m.runtime.reset()

    spammer = threading.Thread(target=spam)
    interval = sys.getswitchinterval()
    try:
        m._install(m._new_board())
        sys.setswitchinterval(1e-6)  # make the race window wide enough to hit every time
        spammer.start()
        for _ in range(40):
            while not m._requests:
                time.sleep(0.001)
            m._handle(*m._requests.popleft())
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        if spammer.ident is not None:
            spammer.join()
        m._shutdown()


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    m = GuestMemory.create(4 << 20)
    yield m
    m.close()


def test_a_broken_net_device_still_drains_its_backend(mem: GuestMemory) -> None:
    """Once a guest breaks virtio-net (here: a descriptor index past the queue), the transport
    skipped every handler, including the backend's: frames arriving afterwards stayed unread,
    poll reported the fd readable forever and the device's I/O thread spun at 100% CPU (holding
    the GIL against the vCPUs) until the guest reset the device, which it never has to."""
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t = VirtioMmioTransport(VirtioNet(StreamBackend(ours), stable_mac("t")), mem, lambda: None)
    try:
        d = Driver(t, mem)
        d.setup()
        tx = d.queues[1]
        mem.write(tx.desc, struct.pack("<QIHH", DATA_BASE, 64, VIRTQ_DESC_F_NEXT, 999))
        mem.write_u16(tx.avail + 4, 0)
        mem.write_u16(tx.avail + 2, 1)
        d.kick(1)
        assert d.needs_reset()
        fd, handler = t.fds()[0]  # the backend's socket (then its "room again" eventfd)
        frame = b"\xff" * 60
        peer.sendall(struct.pack("!I", len(frame)) + frame)
        assert select.select([fd], [], [], 1)[0]
        handler()  # what the I/O thread runs when poll says the fd is readable
        assert not select.select([fd], [], [], 0)[0], "backend left readable: poll spins"
        assert not mem.read(DATA_BASE, 64).strip(b"\0")  # and guest RAM stays untouched
    finally:
        t.close()
        peer.close()


def test_running_out_of_fds_does_not_end_the_qmp_accept_loop(server: QmpServer) -> None:
    """An accept() failing with EMFILE (a local client holding many connections open) ended
    the accept task for good: no client could ever connect again, even after the fds were
    released. The server must keep accepting once fds are available."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    socks: list[socket.socket] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
        with contextlib.suppress(OSError):
            for _ in range(64):  # client and server ends share this process's fds
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                socks.append(s)
                s.connect(server.path)
        time.sleep(0.3)  # the server tries to accept them meanwhile
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    time.sleep(0.3)
    c = RawClient(server.path)
    try:
        c.sock.settimeout(5)
        assert "QMP" in c.recv()
        assert c.execute("qmp_capabilities") == {"return": {}}
    finally:
        c.close()
