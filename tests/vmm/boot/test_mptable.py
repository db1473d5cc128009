"""MP table: floating pointer, checksums and every entry, as Linux's MP parser reads them."""

from __future__ import annotations

import struct

import pytest

from vmgui.vmm import layout
from vmgui.vmm.boot import BootError, build_mptable
from vmgui.vmm.boot.mptable import MAX_CPUS
from vmgui.vmm.memory import GuestMemory


@pytest.mark.parametrize("ncpus", [1, 2, MAX_CPUS])
def test_mptable(ncpus: int) -> None:
    mem = GuestMemory.create(4 << 20)
    try:
        addr = build_mptable(mem, ncpus)
        assert addr == layout.MPTABLE == 0x9FC00  # last KiB of base memory: Linux scans it
        fp = mem.read(addr, 16)
        assert fp[:4] == b"_MP_" and sum(fp) % 256 == 0
        physptr, length, rev = struct.unpack_from("<IBB", fp, 4)
        assert (length, rev) == (1, 4)
        hdr = mem.read(physptr, 44)
        assert hdr[:4] == b"PCMP"
        base_len, count, lapic = (
            struct.unpack_from("<H", hdr, 4)[0],
            *struct.unpack_from("<HI", hdr, 34),
        )
        assert lapic == layout.LAPIC_BASE
        table = mem.read(physptr, base_len)
        assert sum(table) % 256 == 0
        assert physptr + base_len <= layout.BIOS_AREA_START

        pos, kinds = 44, {0: [], 1: [], 2: [], 3: [], 4: []}
        for _ in range(count):
            kind = table[pos]
            size = 20 if kind == 0 else 8
            kinds[kind].append(table[pos : pos + size])
            pos += size
        assert pos == base_len
        cpus = kinds[0]
        assert [c[1] for c in cpus] == list(range(ncpus))
        assert [c[3] for c in cpus] == [3] + [1] * (ncpus - 1)  # enabled, BSP first
        assert kinds[1] == [struct.pack("<BB6s", 1, 0, b"ISA   ")]
        assert kinds[2] == [struct.pack("<BBBBI", 2, ncpus, 0x11, 1, layout.IOAPIC_BASE)]
        routes = {e[5]: (e[6], e[7]) for e in kinds[3]}
        assert routes == {irq: (ncpus, irq) for irq in range(16)}
        assert set(layout.VIRTIO_IRQS) <= set(routes)
        assert [(e[1], e[7]) for e in kinds[4]] == [(3, 0), (1, 1)]  # ExtINT LINT0, NMI LINT1
    finally:
        mem.close()


def test_too_many_cpus() -> None:
    mem = GuestMemory.create(4 << 20)
    try:
        with pytest.raises(BootError, match=f"1..{MAX_CPUS} vCPUs, not {MAX_CPUS + 1}"):
            build_mptable(mem, MAX_CPUS + 1)
    finally:
        mem.close()
