"""Only kernel images are accepted as kernels."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.libvirtd import KERNEL_DIR
from tests.support import need
from vmgui.backends.libvirt.boot_files import kernel_problem


def test_a_real_bzimage_and_an_elf_pass(tmp_path: Path) -> None:
    kernel = KERNEL_DIR / "vmlinuz"
    need(kernel.is_file(), f"{kernel} is missing (run tests/fetch_assets.sh)")
    assert kernel_problem(str(kernel)) == ""
    elf = tmp_path / "guest.elf"
    elf.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(64))
    assert kernel_problem(str(elf)) == ""


def test_other_files_are_refused_with_a_sentence(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a kernel\n" * 100)
    assert kernel_problem(str(text)) == (
        "notes.txt is not a kernel image (neither a Linux bzImage nor an ELF file)."
    )
    assert "does not exist" in kernel_problem(str(tmp_path / "missing"))
    assert "folder" in kernel_problem(str(tmp_path))
