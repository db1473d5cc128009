"""`vmgui-vmm run` virtio options → device factories, and their one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmgui.vmm.cli import build_parser, config_from_args
from vmgui.vmm.errors import VmmError
from vmgui.vmm.virtio.attach import cmdline
from vmgui.vmm.virtio.block import VirtioBlock
from vmgui.vmm.virtio.options import DiskSpec, parse_disk
from vmgui.vmm.virtio.rng import VirtioRng


def config(*args: str) -> object:
    return config_from_args(build_parser().parse_args(["run", "--kernel", "k", *args]))


def test_defaults_give_only_rng_and_disks_come_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a.raw", tmp_path / "b.raw"
    a.write_bytes(bytes(4096))
    b.write_bytes(bytes(4096))
    cfg = config("--disk", str(a), "--disk", f"{b},ro")
    devices = [f() for f in cfg.virtio]  # type: ignore[attr-defined]
    try:
        assert [type(d) for d in devices] == [VirtioBlock, VirtioBlock, VirtioRng]
        assert [getattr(d, "read_only", None) for d in devices[:2]] == [False, True]
    finally:
        for d in devices:
            d.close()
    assert config("--no-rng").virtio == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args,message",
    [
        (("--net", "vde"), "--net 'vde': expected none, passt or tap:NAME"),
        (("--mac", "52:54:00:12:34:56"), "--mac needs a network"),
        (("--net", "passt", "--mac", "nope"), "--mac: invalid MAC address 'nope'"),
        (("--disk", ",ro"), "--disk ',ro': missing image path"),
        (("--disk", "a.img,format=qcow2"), "--disk 'a.img,format=qcow2': format 'qcow2' is not"),
        (("--disk", "a.img,serial=" + "x" * 21), "--disk 'a.img,serial=xxxxxxxxxxxxxxxxxxxxx': serial"),
    ],
)
def test_bad_options_are_one_line_errors(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(VmmError) as e:
        config(*args)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_disk_spec_and_kernel_cmdline_syntax() -> None:
    assert parse_disk("/x/y.img") == DiskSpec("/x/y.img", False)
    assert parse_disk("/x/y.img,ro") == DiskSpec("/x/y.img", True)
    assert parse_disk("/x/y.qcow2,format=raw,serial=ABC") == DiskSpec("/x/y.qcow2", False, "raw", "ABC")
    assert cmdline(2) == ("virtio_mmio.device=4K@0xd0000000:5 "
                          "virtio_mmio.device=4K@0xd0001000:6")
