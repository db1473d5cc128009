"""The vCPU thread's port-I/O paths against the real /dev/kvm: a real-mode guest makes every kind
of port access (single and string, each width, ports with and without a device) and the test
checks what the devices saw, what the guest read, and the counters the statistics report."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import assemble, need_kvm
from tests.vmm.test_kvm import CODE, real_mode_vm
from vmgui.vmm import kvm as k
from vmgui.vmm import vcpu as vcpu_module
from vmgui.vmm.devices.bus import Bus
from vmgui.vmm.vcpu import VcpuEvent, VcpuThread, install_kick_handler

DEVICE, DONE, NOTHING = 0x500, 0x510, 0x5F0
#: What the device answers a read at `offset` (before the loop masks it to the access size).
READ_VALUE = 0x12345678

#: The guest ends with `rep insb` of every count from 2 to LAST_COUNT, as a firmware reading
#: files of many lengths through one port does.
LAST_COUNT = 40
STRING_READS = sum(range(2, LAST_COUNT + 1))

GUEST = f"""
LAST_COUNT = {LAST_COUNT}
.code16
start:
    cld
    mov ${DEVICE}, %dx
    mov $0x41, %al
    out %al, %dx
    mov $0xbeef, %ax
    out %ax, %dx
    mov $0xcafef00d, %eax
    out %eax, %dx
    in %dx, %al
    mov %al, 0x2000
    inc %dx
    in %dx, %ax
    mov %ax, 0x2002
    in %dx, %eax
    mov %eax, 0x2004
    dec %dx
    mov $(message - start + {CODE}), %si
    mov $5, %cx
    rep outsb
    mov $0x2100, %di
    mov $3, %cx
    rep insb
    mov ${NOTHING}, %dx
    out %al, %dx
    out %ax, %dx
    mov $0x2200, %si
    mov $4, %cx
    rep outsb
    in %dx, %al
    mov %al, 0x2010
    in %dx, %ax
    mov %ax, 0x2012
    in %dx, %eax
    mov %eax, 0x2014
    mov ${DEVICE}, %dx
    mov $2, %bx
1:  mov %bx, %cx
    mov $0x3000, %di
    rep insb
    inc %bx
    cmp $(LAST_COUNT + 1), %bx
    jne 1b
    mov ${DONE}, %dx
    out %al, %dx
    jmp .
message:
    .ascii "hello"
"""


class Recorder:
    """A port device that records writes and answers reads with READ_VALUE + offset."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, int, int]] = []
        self.reads: list[tuple[int, int]] = []
        self.done = threading.Event()

    def read(self, offset: int, size: int) -> int:
        self.reads.append((offset, size))
        return READ_VALUE + offset

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))


class Done:
    def __init__(self) -> None:
        self.event = threading.Event()

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.event.set()


@pytest.fixture
def kvm() -> Iterator[k.Kvm]:
    need_kvm()
    handle = k.Kvm()
    try:
        yield handle
    finally:
        handle.close()


def run_guest(kvm: k.Kvm, tmp_path: Path) -> tuple[VcpuThread, Recorder, bytes, list[VcpuEvent]]:
    """Run GUEST on a VcpuThread until it writes DONE; the vCPU, the device, guest RAM, events."""
    vm, vcpu, region = real_mode_vm(kvm, assemble(GUEST, tmp_path, "--32"))
    pio, mmio = Bus("pio"), Bus("mmio")
    device, done = Recorder(), Done()
    pio.register(DEVICE, 4, device, "recorder")
    pio.register(DONE, 1, done, "done")
    events: list[VcpuEvent] = []
    install_kick_handler()
    thread = VcpuThread(vcpu, pio, mmio, events.append)
    thread.start()
    try:
        # Guest kernel mode may be emulated instruction by instruction: a generous bound.
        assert done.event.wait(60), f"the guest never finished; events {events}"
    finally:
        thread.request_quit()
        assert thread.join(10)
    ram = bytes(region.mm)  # type: ignore[attr-defined]
    vm.close()
    return thread, device, ram, events


#: (offset, size, value) the device must see, in order.
EXPECTED_WRITES = [(0, 1, 0x41), (0, 2, 0xBEEF), (0, 4, 0xCAFEF00D)] + [
    (0, 1, b) for b in b"hello"
]
#: pio_counts, in elements: reads, writes, and of those the ones to the port without a device.
#: Reads: 3 single + 3 by rep insb, and 3 single to NOTHING. Writes: 3 single + 5 by rep outsb
#: + the one to DONE, and to NOTHING 2 single + 4 by rep outsb.
EXPECTED_COUNTS = [3 + 3 + 3 + STRING_READS, 3 + 5 + 1 + 2 + 4, 3, 2 + 4]


def check_guest_run(device: Recorder, ram: bytes, events: list[VcpuEvent]) -> None:
    assert events == []
    assert device.writes == EXPECTED_WRITES
    assert device.reads == [(0, 1), (1, 2), (1, 4)] + [(0, 1)] * (3 + STRING_READS)
    assert ram[0x2000] == 0x78  # READ_VALUE masked to the access size
    assert int.from_bytes(ram[0x2002:0x2004], "little") == (READ_VALUE + 1) & 0xFFFF
    assert int.from_bytes(ram[0x2004:0x2008], "little") == READ_VALUE + 1
    assert ram[0x2100:0x2103] == b"\x78" * 3  # rep insb: one device read per byte
    # A port nobody decodes reads as all ones, at every width.
    assert ram[0x2010] == 0xFF
    assert ram[0x2012:0x2014] == b"\xff" * 2
    assert ram[0x2014:0x2018] == b"\xff" * 4


def test_every_kind_of_port_access_reaches_the_device_and_is_counted(
    kvm: k.Kvm, tmp_path: Path
) -> None:
    thread, device, ram, events = run_guest(kvm, tmp_path)
    check_guest_run(device, ram, events)
    assert thread.pio_counts == EXPECTED_COUNTS
    assert thread.pio_unhandled == {NOTHING: EXPECTED_COUNTS[2] + EXPECTED_COUNTS[3]}
    # 19 port instructions, then the string reads; KVM may split a string instruction into
    # more exits, never fewer.
    assert thread.exit_counts()["IO"] >= 19 + LAST_COUNT - 1
    # One kind per port, direction, size and single/string: 15 here, whatever the counts.
    assert len(thread._ports) <= 15


def test_accesses_beyond_the_remembered_kinds_behave_and_count_the_same(
    kvm: k.Kvm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest sweeping the port space must not grow the per-vCPU table without bound; what it
    does past the limit still reaches the devices and the counters."""
    monkeypatch.setattr(vcpu_module, "MAX_CACHED_PORTS", 2)
    thread, device, ram, events = run_guest(kvm, tmp_path)
    check_guest_run(device, ram, events)
    assert len(thread._ports) == 2
    assert thread.pio_counts == EXPECTED_COUNTS
    assert thread.exit_counts()["IO"] >= 19 + LAST_COUNT - 1
