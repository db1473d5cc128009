"""Shared test helpers.

`need()` is how a test states a requirement on this machine (/dev/kvm, libvirtd, a display,
a tool): locally an unmet requirement skips with the reason; in CI (CI=true) it fails, because
a test that silently skips in CI proves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: object, why: str) -> None:
    """Skip (locally) or fail (CI=true) unless `condition` is truthy."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"requirement not met in CI: {why}", pytrace=False)
    pytest.skip(why)


def need_tool(name: str) -> str:
    path = shutil.which(name)
    need(path, f"{name} is not installed (./setup.sh test installs it)")
    assert path is not None
    return path


def assemble(source: str, tmp_path: Path, arch: str = "--64") -> bytes:
    """Flat machine code of GNU assembler `source` (`arch`: as's --32 or --64; `.code16` for
    real mode), via binutils: test-time only, the runtime has no compiler."""
    as_ = need_tool("as")
    objcopy = need_tool("objcopy")
    src, obj, flat = tmp_path / "x.s", tmp_path / "x.o", tmp_path / "x.bin"
    src.write_text(source)
    subprocess.run([as_, arch, "-o", str(obj), str(src)], check=True)
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(obj), str(flat)], check=True)
    return flat.read_bytes()


def need_kvm() -> None:
    need(
        os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK),
        "/dev/kvm is missing or not read/writable by this user",
    )


def without_permission_override() -> list[str]:
    """Command prefix that runs a program as root *without* DAC override.

    Permission tests need a process that /dev/kvm's mode can refuse. Becoming `nobody` would
    also lock it out of the checkout and its venv when they sit in a 0700 home directory;
    dropping the override capabilities keeps uid 0 (and the code readable) but makes file
    modes apply again. As another user, plain permissions already apply: no prefix.
    """
    if os.geteuid() != 0:
        return []
    setpriv = need_tool("setpriv")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def kvm_node(directory: str | os.PathLike[str], mode: int, group: str = "kvm") -> str:
    """A KVM character device node (10:232) owned by nobody:`group` with `mode` (needs root)."""
    import grp
    import stat

    need(os.geteuid() == 0, "making a device node needs root")
    path = os.path.join(os.fspath(directory), "kvm")
    os.mknod(path, stat.S_IFCHR | mode, os.makedev(10, 232))
    os.chown(path, 65534, grp.getgrnam(group).gr_gid)
    os.chmod(path, mode)
    return path
