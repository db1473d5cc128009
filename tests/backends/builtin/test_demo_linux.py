"""Demo Linux: Debian's kernel + busybox fetched with apt-get download, our own initramfs."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from tests.support import need_tool
from vmgui.backends.base import BackendError
from vmgui.backends.builtin import checks, demo_linux


def test_initramfs_unpacks_with_cpio(tmp_path: Path) -> None:
    cpio = need_tool("cpio")
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    archive = tmp_path / "initramfs.cpio"
    demo_linux.write_initramfs(archive, busybox)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([cpio, "-idm", "--quiet", "-F", str(archive)], cwd=out, check=True)
    assert (out / "init").read_text() == demo_linux.INIT_SCRIPT
    assert (out / "init").stat().st_mode & 0o111
    assert (out / "bin" / "busybox").read_bytes() == busybox.read_bytes()
    assert (out / "proc").is_dir()


def test_no_package_source_is_one_sentence(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("apt-cache")
    lists = tmp_path / "lists"
    lists.mkdir()
    conf = tmp_path / "apt.conf"
    conf.write_text(f'Dir::State::lists "{lists}";\nDir::Cache::pkgcache "";\n'
                    'Dir::Cache::srcpkgcache "";\n')
    monkeypatch.setenv("APT_CONFIG", str(conf))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(BackendError, match="No Debian package source is available"):
        demo_linux.prepare_demo_linux()


@pytest.mark.slow
def test_fetches_kernel_and_busybox_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads ~27 MB from the configured Debian mirror (as the Demo would for a user)."""
    need_tool("apt-get")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(BackendError, match="cancelled"):
        demo_linux.prepare_demo_linux(cancel=cancel)
    assert demo_linux.cached() is None
    steps: list[int] = []
    demo = demo_linux.prepare_demo_linux(lambda p, _t: steps.append(p))
    assert steps[0] < steps[-1] == 100
    assert checks.kernel_problem(str(demo.kernel)) == ""  # a real bzImage
    assert demo.initrd.read_bytes()[:6] == b"070701"
    assert demo_linux.prepare_demo_linux() == demo  # cached
