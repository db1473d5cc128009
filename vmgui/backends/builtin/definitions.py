"""Built-in VM definitions: one JSON file per VM, `<uuid>.json`, replaced atomically.

A definition is what the user chose (`VmConfig`) plus its identity. Files are written with
`write_atomically`, so a crash while saving leaves the previous definition, never a torn one; a
file that is unreadable anyway (edited by hand, disk trouble) is skipped with a log line rather
than hiding every other VM.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmgui.atomic_file import write_atomically
from vmgui.backends.base import BackendError
from vmgui.model import DiskConfig, VmConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: A definition file larger than this is not ours (a definition is a few hundred bytes).
MAX_DEFINITION_BYTES = 1 << 20


@dataclass
class Definition:
    vm_id: str
    name: str
    memory_mib: int = 512
    vcpus: int = 1
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    iso: str = ""
    #: "" (kernel boot), "seabios" or a firmware file: ISOs and disk images boot through it.
    firmware: str = ""
    disks: list[DiskConfig] = field(default_factory=list)
    #: Disk images this backend created (deleted with the VM when asked); never imported ones.
    created_disks: list[str] = field(default_factory=list)
    network: str = "none"
    framebuffer: tuple[int, int] = (1024, 768)

    @classmethod
    def from_config(cls, config: VmConfig, vm_id: str | None = None) -> Definition:
        firmware = "seabios" if config.iso or (not config.kernel and config.disks) else ""
        network = {"user": "passt"}.get(config.network, config.network)
        return cls(
            vm_id=vm_id or str(uuid.uuid4()),
            name=config.name,
            memory_mib=config.memory_mib,
            vcpus=config.vcpus,
            kernel=config.kernel,
            initrd=config.initrd,
            cmdline=config.cmdline,
            iso=config.iso,
            firmware=firmware,
            disks=[DiskConfig(d.path, d.readonly, 0) for d in config.disks],
            created_disks=[d.path for d in config.disks if d.size_bytes > 0],
            network=network,
            framebuffer=tuple(config.framebuffer),  # type: ignore[arg-type]
        )

    def to_config(self) -> VmConfig:
        return VmConfig(
            name=self.name,
            memory_mib=self.memory_mib,
            vcpus=self.vcpus,
            kernel=self.kernel,
            initrd=self.initrd,
            cmdline=self.cmdline,
            iso=self.iso,
            disks=[DiskConfig(d.path, d.readonly) for d in self.disks],
            network=self.network,
            framebuffer=self.framebuffer,
        )

    def to_json(self) -> bytes:
        data = asdict(self)
        data["version"] = FORMAT_VERSION
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Definition:
        """ValueError for anything that is not a definition we wrote."""
        data: Any = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a vmgui definition (version)")
        try:
            disks = [DiskConfig(str(d["path"]), bool(d.get("readonly", False)))
                     for d in data.get("disks", [])]
            fb = data.get("framebuffer", [1024, 768])
            return cls(
                vm_id=str(uuid.UUID(str(data["vm_id"]))),
                name=_text(data["name"]),
                memory_mib=int(data.get("memory_mib", 512)),
                vcpus=int(data.get("vcpus", 1)),
                kernel=_text(data.get("kernel", "")),
                initrd=_text(data.get("initrd", "")),
                cmdline=_text(data.get("cmdline", "")),
                iso=_text(data.get("iso", "")),
                firmware=_text(data.get("firmware", "")),
                disks=disks,
                created_disks=[_text(p) for p in data.get("created_disks", [])],
                network=_text(data.get("network", "none")),
                framebuffer=(int(fb[0]), int(fb[1])),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"malformed definition: {exc}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


class DefinitionStore:
    """The directory of definitions; every method is blocking file I/O (call from an executor)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, vm_id: str) -> Path:
        return self.directory / f"{uuid.UUID(vm_id)}.json"

    def load_all(self) -> list[Definition]:
        try:
            files = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        out = []
        for f in files:
            try:
                if f.stat().st_size > MAX_DEFINITION_BYTES:
                    raise ValueError("too large")
                d = Definition.from_json(f.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("skipping VM definition %s: %s", f, exc)
                continue
            if f.name != f"{d.vm_id}.json":
                log.warning("skipping VM definition %s: its id says %s", f, d.vm_id)
                continue
            out.append(d)
        return out

    def save(self, d: Definition) -> None:
        try:
            write_atomically(self.path(d.vm_id), d.to_json())
        except OSError as exc:
            raise BackendError(
                f"Cannot save the VM definition in {self.directory}: {exc.strerror or exc}."
            ) from None

    def remove(self, vm_id: str) -> None:
        try:
            self.path(vm_id).unlink(missing_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot remove the VM definition: {exc.strerror or exc}.") from None
