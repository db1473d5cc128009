"""Shared test helpers.

`need()` is how a test states a requirement on this machine (/dev/kvm, libvirtd, a display,
a tool): locally an unmet requirement skips with the reason; in CI (CI=true) it fails, because
a test that silently skips in CI proves nothing.
"""

from __future__ import annotations

import os
import shutil

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


def need_kvm() -> None:
    need(
        os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK),
        "/dev/kvm is missing or not read/writable by this user",
    )
