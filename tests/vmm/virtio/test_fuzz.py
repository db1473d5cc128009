"""Property tests: hostile rings, descriptors, lengths and register sequences against every device.

Fast subset for CI (FUZZ_EXAMPLES per device); bench/fuzz_virtio.py runs >= 100,000 cases.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vmm.virtio.driver import DATA_BASE, Buf, Driver
from tests.vmm.virtio.fuzzing import DEVICES, IMAGE_SECTORS, FuzzCase, RegOp, Rig, run_case
from tests.vmm.virtio.strategies import fuzz_cases, reg_op
from vmgui.vmm.virtio import block, mmio
from vmgui.vmm.virtio.block import VirtioBlock
from vmgui.vmm.virtio.mmio import VirtioMmioTransport
from vmgui.vmm.virtio.rng import VirtioRng

FUZZ_EXAMPLES = 150


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


@pytest.mark.parametrize("device", DEVICES)
def test_hostile_driver_never_escapes_the_device(rig: Rig, device: str) -> None:
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(fuzz_cases(device))
    def check(case: FuzzCase) -> None:
        run_case(rig, case)

    check()


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.sampled_from(DEVICES), st.lists(reg_op, max_size=40))
def test_random_register_sequences_are_harmless(rig: Rig, device: str, ops: list[RegOp]) -> None:
    run_case(rig, FuzzCase(device=device, pre_ops=ops, post_ops=ops[::-1]))


request_kinds = st.sampled_from([block.VIRTIO_BLK_T_IN, block.VIRTIO_BLK_T_OUT,
                                 block.VIRTIO_BLK_T_FLUSH, block.VIRTIO_BLK_T_GET_ID, 7])
blk_request = st.tuples(request_kinds, st.integers(0, IMAGE_SECTORS + 2),
                        st.lists(st.integers(1, 1536), min_size=0, max_size=3), st.binary(max_size=1))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.lists(blk_request, min_size=1, max_size=6), st.booleans())
def test_well_formed_block_requests_match_a_model_disk(
    rig: Rig, requests: list[tuple[int, int, list[int], bytes]], read_only: bool
) -> None:
    """Valid chains with random types, sectors and segment sizes: the guest sees exactly what a
    byte-array model of the disk predicts, and the file holds exactly the model's bytes."""
    mem = rig.mem
    model = bytearray(Path(rig.image).read_bytes())
    dev = VirtioBlock(rig.image, read_only=read_only)
    d = Driver(VirtioMmioTransport(dev, mem, lambda: None), mem)
    try:
        d.setup(queue_size=8)
        for kind, sector, segs, fill in requests:
            mem.write(DATA_BASE, struct.pack("<IIQ", kind, 0, sector))
            bufs, addr = [], DATA_BASE + 0x1000
            for n in segs:
                mem.write(addr, (fill or b"\x5a") * n)
                bufs.append(Buf(addr, n, kind != block.VIRTIO_BLK_T_OUT))
                addr += 0x1000
            d.queues[0].submit([Buf(DATA_BASE, 16, False), *bufs, Buf(DATA_BASE + 0x20, 1, True)])
            d.kick(0)
            [(_, used)] = d.queues[0].used_entries()
            status = mem.read_u8(DATA_BASE + 0x20)
            length, start = sum(segs), sector * 512
            in_range = start + length <= len(model)
            if kind == block.VIRTIO_BLK_T_IN:
                assert status == (0 if in_range else 1)
                if in_range:
                    got = b"".join(mem.read(b.addr, b.length) for b in bufs)
                    assert got == model[start:start + length] and used == length + 1
            elif kind == block.VIRTIO_BLK_T_OUT:
                assert status == (0 if in_range and not read_only else 1)
                if status == 0:
                    model[start:start + length] = (fill or b"\x5a") * length
            elif kind in (block.VIRTIO_BLK_T_FLUSH, block.VIRTIO_BLK_T_GET_ID):
                assert status == 0
            else:
                assert status == block.VIRTIO_BLK_S_UNSUPP
        assert not d.needs_reset()
    finally:
        d.t.close()
    assert Path(rig.image).read_bytes() == model


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.lists(st.sampled_from([0, 1, 2, 8, 16]), min_size=1, max_size=3),
       st.lists(st.sampled_from([0, 0, 1, 2, 511, 512]), max_size=4), blk_request)
def test_block_requests_with_any_buffer_layout_end_in_a_status(
    rig: Rig, header_parts: list[int], writable: list[int],
    request: tuple[int, int, list[int], bytes],
) -> None:
    """Headers split or short, zero-length and 1-byte writable buffers anywhere (the status
    descriptor of length 0 that once escaped as IndexError): each request is answered with a
    status in the last writable byte, or, with no writable byte, the device needs a reset."""
    kind, sector, _, _ = request
    mem = rig.mem
    t = VirtioMmioTransport(VirtioBlock(rig.image), mem, lambda: None)
    d = Driver(t, mem)
    try:
        d.setup(queue_size=16)
        mem.write(DATA_BASE, struct.pack("<IIQ", kind, 0, sector))
        bufs, addr = [], DATA_BASE
        for n in header_parts:
            bufs.append(Buf(addr, n, False))
            addr += n
        for i, n in enumerate(writable):
            bufs.append(Buf(DATA_BASE + 0x1000 * (i + 1), n, True))
        mem.fill(DATA_BASE + 0x1000, 0x5000, 0xEE)
        d.queues[0].submit(bufs)
        d.kick(0)
        assert t.stats.internal_errors == 0, t.stats.last_error
        last = next((b for b in reversed(bufs) if b.writable and b.length), None)
        if last is None:
            assert d.needs_reset()
            return
        [(_, used)] = d.queues[0].used_entries()
        assert 1 <= used <= sum(writable)
        assert mem.read_u8(last.addr + last.length - 1) in (
            block.VIRTIO_BLK_S_OK, block.VIRTIO_BLK_S_IOERR, block.VIRTIO_BLK_S_UNSUPP)
        assert not d.needs_reset()
    finally:
        t.close()


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.booleans(), st.lists(st.one_of(st.integers(0, 0xFF), st.sampled_from([0, 1, 3, 0xB, 0xF])),
                               max_size=24))
def test_status_only_moves_forward_until_a_reset(rig: Rig, version_1: bool,
                                                 writes: list[int]) -> None:
    """The transport's status register follows virtio's state machine whatever the driver
    writes: bits are only added, each after its prerequisite, and the device is activated at
    most once per reset."""
    activations: list[int] = []

    class Watched(VirtioRng):
        def activate(self, *args: object, **kwargs: object) -> None:
            activations.append(1)
            super().activate(*args, **kwargs)  # type: ignore[arg-type]

    t = VirtioMmioTransport(Watched(), rig.mem, lambda: None)
    t.write(mmio.REG_DRIVER_FEATURES_SEL, 4, 1)
    t.write(mmio.REG_DRIVER_FEATURES, 4, int(version_1))
    status, resets = 0, 0
    for value in writes:
        t.write(mmio.REG_STATUS, 4, value)
        now = t.read(mmio.REG_STATUS, 4)
        if value == 0:
            resets += 1
            assert now == 0
            t.write(mmio.REG_DRIVER_FEATURES_SEL, 4, 1)
            t.write(mmio.REG_DRIVER_FEATURES, 4, int(version_1))
        else:
            assert now & status == status, f"status went back from {status:#x} to {now:#x}"
        for bit, need in mmio.STATUS_PREREQUISITES:
            assert not now & bit or now & need
        status = now
    assert len(activations) <= resets + 1
    t.close()
