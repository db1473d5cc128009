"""Driving a BuiltinBackend from plain asyncio in tests."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from vmgui.backends.builtin import BuiltinBackend
from vmgui.model import VmConfig, VmInfo, VmState


async def connected() -> BuiltinBackend:
    backend = BuiltinBackend()
    await backend.connect()
    return backend


async def wait_state(backend: BuiltinBackend, vm_id: str, state: VmState,
                     timeout: float = 30.0) -> VmInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = next(v for v in await backend.list_vms() if v.vm_id == vm_id)
        if info.state is state:
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"{info.name} is {info.state.value}, not {state.value}: "
                                 f"{info.reason}")
        await asyncio.sleep(0.05)


async def wait_file_text(path: Path, text: str, timeout: float = 30.0, count: int = 1) -> None:
    """Until `text` stands in the file `count` times."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text(errors="replace").count(text) >= count):
        if time.monotonic() > deadline:
            seen = path.read_text(errors="replace") if path.exists() else "(no file)"
            raise AssertionError(f"no {text!r} in {path}: {seen[-300:]!r}")
        await asyncio.sleep(0.05)


def guest_config(name: str, kernel: Path, **kw: object) -> VmConfig:
    return VmConfig(name=name, memory_mib=32, vcpus=1, kernel=str(kernel), network="none", **kw)  # type: ignore[arg-type]


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
