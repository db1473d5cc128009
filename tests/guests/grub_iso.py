"""GRUB test media built at test time: `grub-mkrescue` (Debian grub-pc-bin, grub-common, xorriso,
mtools) makes a hybrid ISO that boots as a CD and, copied onto a raw disk, as a hard disk."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import need, need_tool

GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")


def build_grub_iso(directory: Path, grub_cfg: str, name: str = "grub.iso") -> Path:
    """An ISO whose /boot/grub/grub.cfg is `grub_cfg` (needs the tools: skip or CI failure)."""
    tool = need_tool("grub-mkrescue")
    need_tool("xorriso")
    need_tool("mformat")
    need(GRUB_PC_DIR.is_dir(), "grub-pc-bin is not installed (./setup.sh test installs it)")
    tree = directory / f"{name}.tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg)
    iso = directory / name
    subprocess.run([tool, "-o", str(iso), str(tree)], check=True, capture_output=True, timeout=120)
    shutil.rmtree(tree)
    return iso


def iso_to_disk_image(iso: Path, image: Path, size: int = 16 << 20) -> Path:
    """`dd` the hybrid ISO onto the start of a raw disk image of `size` bytes."""
    with open(iso, "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(max(size, dst.tell()))
    return image
