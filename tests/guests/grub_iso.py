"""GRUB test media built at test time: `grub-mkrescue` (Debian grub-pc-bin, grub-common, xorriso,
mtools) makes a hybrid ISO that boots as a CD and, copied onto a raw disk, as a hard disk."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import need, need_tool

GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")
#: GRUB modules a test menu needs (plus what they depend on). Fewer modules, no fonts, locales
#: or themes: GRUB reads and links less at start-up, which on a host that emulates guest ring 0
#: is most of the time to the menu (about a fifth less than a full ISO, measured here).
MENU_MODULES = "normal echo sleep serial terminal"


def build_grub_iso(
    directory: Path, grub_cfg: str, name: str = "grub.iso", modules: str = MENU_MODULES
) -> Path:
    """An ISO whose /boot/grub/grub.cfg is `grub_cfg` and whose GRUB has `modules` (and their
    dependencies) installed; needs the tools (skip, or a failure under CI=true)."""
    tool = need_tool("grub-mkrescue")
    need_tool("xorriso")
    need_tool("mformat")
    need(GRUB_PC_DIR.is_dir(), "grub-pc-bin is not installed (./setup.sh test installs it)")
    tree = directory / f"{name}.tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg)
    iso = directory / name
    argv = [tool, f"--install-modules={modules}", "--fonts=", "--locales=", "--themes="]
    subprocess.run([*argv, "-o", str(iso), str(tree)], check=True, capture_output=True, timeout=120)
    shutil.rmtree(tree)
    return iso


def iso_to_disk_image(iso: Path, image: Path, size: int = 16 << 20) -> Path:
    """`dd` the hybrid ISO onto the start of a raw disk image of `size` bytes."""
    with open(iso, "rb") as src, open(image, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(max(size, dst.tell()))
    return image


def read_ppm(path: Path) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a binary PPM screendump."""
    magic, dims, maxval, pixels = path.read_bytes().split(b"\n", 3)
    assert magic == b"P6" and maxval == b"255", "not a binary PPM"
    w, h = map(int, dims.split())
    return w, h, pixels


def lit_text_rows(path: Path, row_height: int = 16) -> int:
    """How many text rows (16 pixel lines: VGA text mode's font) of a screendump have a lit
    pixel: a GRUB menu lights 10 or more, a blank screen none."""
    w, h, pixels = read_ppm(path)
    line = w * 3
    return len({y // row_height for y in range(h) if pixels[y * line : (y + 1) * line].strip(b"\0")})
