"""Find and check the firmware files before anything starts, so each problem is one line.

`--firmware seabios` means Debian's `seabios` package: /usr/share/seabios/bios-microvm.bin (the
SeaBIOS build for a machine without PCI) plus vgabios-ramfb.bin, the VGA option ROM that drives
the ramfb display. `--firmware PATH` takes any BIOS image of the same kind.
"""

from __future__ import annotations

import os

from vmgui.vmm.errors import VmmError
from vmgui.vmm.record import record

SEABIOS_DIR = "/usr/share/seabios"
SEABIOS_PACKAGE = "seabios"
SEABIOS_MICROVM = os.path.join(SEABIOS_DIR, "bios-microvm.bin")
VGA_ROM_RAMFB = os.path.join(SEABIOS_DIR, "vgabios-ramfb.bin")
#: The name `--firmware` accepts for the packaged SeaBIOS.
SEABIOS_NAME = "seabios"

#: A BIOS image is whole 64 KiB blocks (the memslot needs whole pages; ROMs come in 64 KiB).
IMAGE_ALIGN = 64 << 10
#: Largest image mapped below 4 GiB (QEMU's limit for -bios is 16 MiB as well).
MAX_IMAGE_SIZE = 16 << 20
#: Bytes of the image's tail copied to 0xE0000-0xFFFFF, where real mode runs it.
LOW_COPY_SIZE = 128 << 10
#: The reset vector sits 16 bytes below the end: a jump (far, near or short) in any real BIOS.
RESET_VECTOR_FROM_END = 16
RESET_VECTOR_OPCODES = (0xEA, 0xE9, 0xEB)
#: The one mode SeaBIOS's ramfb VGA ROM sets (vgasrc/ramfb.c: FRAMEBUFFER_WIDTH/HEIGHT).
RAMFB_MODE = (1024, 768)
#: Option ROMs start with 0x55 0xAA and are at most 128 KiB here (the C/D segments).
OPTION_ROM_SIGNATURE = b"\x55\xaa"
MAX_OPTION_ROM_SIZE = 128 << 10


@record(frozen=True)
class FirmwareFiles:
    """The BIOS image and the VGA option ROM (None: no display)."""

    bios: bytes
    bios_path: str
    vga_rom: bytes | None


def _package_hint(path: str) -> str:
    if os.path.dirname(path) == SEABIOS_DIR:
        return f" (install the Debian package '{SEABIOS_PACKAGE}')"
    return ""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_IMAGE_SIZE + 1)
    except FileNotFoundError:
        raise VmmError(f"{what} not found: {path}{_package_hint(path)}") from None
    except IsADirectoryError:
        raise VmmError(f"{what} is a directory: {path}") from None
    except OSError as e:
        raise VmmError(f"cannot read {what} {path}: {e.strerror}") from None


def resolve(name: str) -> str:
    """`seabios` -> the packaged microvm build; anything else is a path."""
    return SEABIOS_MICROVM if name == SEABIOS_NAME else name


def check_bios(data: bytes, path: str) -> None:
    """Raise VmmError unless `data` looks like a BIOS image we can map and reset into."""
    size = len(data)
    if size == 0 or size % IMAGE_ALIGN or size > MAX_IMAGE_SIZE:
        raise VmmError(
            f"firmware {path} is not a BIOS image: {size} bytes (expected a multiple of "
            f"{IMAGE_ALIGN >> 10} KiB, at most {MAX_IMAGE_SIZE >> 20} MiB)"
        )
    if data[size - RESET_VECTOR_FROM_END] not in RESET_VECTOR_OPCODES:
        raise VmmError(f"firmware {path} is not a BIOS image: no jump at its reset vector")


def check_option_rom(data: bytes, path: str) -> None:
    if not data.startswith(OPTION_ROM_SIGNATURE) or len(data) > MAX_OPTION_ROM_SIZE:
        raise VmmError(f"VGA option ROM {path} is corrupt (no 55 AA signature or too large)")


def load_firmware(name: str, display: tuple[int, int] | None) -> FirmwareFiles:
    """Read and check the BIOS (and, with a display of `display` pixels, the ramfb VGA ROM);
    VmmError says why not."""
    if display is not None and display != RAMFB_MODE:
        w, h = RAMFB_MODE
        raise VmmError(
            f"--firmware draws {w}x{h} (SeaBIOS's ramfb display): use --framebuffer {w}x{h} or none"
        )
    path = resolve(name)
    bios = _read(path, "firmware file")
    check_bios(bios, path)
    vga = None
    if display is not None:
        vga = _read(VGA_ROM_RAMFB, "VGA option ROM")
        check_option_rom(vga, VGA_ROM_RAMFB)
    return FirmwareFiles(bios, path, vga)
