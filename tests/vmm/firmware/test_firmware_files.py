"""Firmware options and files: every problem is one line before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import need, need_kvm
from tests.vmm.vmm_process import run_vmm
from vmgui.vmm.errors import VmmError
from vmgui.vmm.firmware import image


def one_line(result: object) -> str:
    err = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode != 0 and err.count("\n") == 1, err  # type: ignore[attr-defined]
    return err


def test_kernel_and_firmware_are_alternatives(tmp_path: Path) -> None:
    kernel = tmp_path / "k"
    kernel.write_bytes(b"x")
    err = one_line(run_vmm("--kernel", kernel, "--firmware", "seabios"))
    assert "alternatives" in err
    assert "nothing to boot" in one_line(run_vmm())
    assert "need --kernel" in one_line(run_vmm("--firmware", "seabios", "--cmdline", "quiet"))


def test_missing_firmware_file_is_one_line(tmp_path: Path) -> None:
    err = one_line(run_vmm("--firmware", tmp_path / "bios.bin"))
    assert err == f"vmgui-vmm: firmware file not found: {tmp_path / 'bios.bin'}\n"


def test_missing_packaged_seabios_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image, "SEABIOS_DIR", str(tmp_path))
    monkeypatch.setattr(image, "SEABIOS_MICROVM", str(tmp_path / "bios-microvm.bin"))
    with pytest.raises(VmmError, match="install the Debian package 'seabios'"):
        image.load_firmware("seabios", display=None)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "0 bytes"),
        (b"\xea" * 1000, "1000 bytes"),
        (bytes(128 << 10), "no jump at its reset vector"),
    ],
)
def test_corrupt_firmware_is_one_line(tmp_path: Path, data: bytes, why: str) -> None:
    bios = tmp_path / "bios.bin"
    bios.write_bytes(data)
    err = one_line(run_vmm("--firmware", bios))
    assert "is not a BIOS image" in err and why in err


def test_corrupt_vga_rom_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rom = tmp_path / "vgabios-ramfb.bin"
    rom.write_bytes(b"MZ" + bytes(100))
    monkeypatch.setattr(image, "VGA_ROM_RAMFB", str(rom))
    bios = tmp_path / "bios.bin"
    bios.write_bytes(bytes((64 << 10) - 16) + b"\xea" + bytes(15))
    with pytest.raises(VmmError, match="VGA option ROM .* is corrupt"):
        image.load_firmware(str(bios), display=(1024, 768))
    assert image.load_firmware(str(bios), display=None).vga_rom is None


def test_unreadable_iso_is_one_line(tmp_path: Path) -> None:
    need_kvm()
    need(os.path.exists(image.SEABIOS_MICROVM), "Debian package seabios is not installed")
    err = one_line(run_vmm("--firmware", "seabios", "--disk", f"{tmp_path / 'missing.iso'},ro"))
    assert "missing.iso does not exist" in err


def test_a_display_size_the_firmware_cannot_draw_is_one_line() -> None:
    err = one_line(run_vmm("--firmware", "seabios", "--framebuffer", "800x600"))
    assert "use --framebuffer 1024x768 or none" in err
