"""Plain data about virtual machines, shared by backends and UI (no Qt, no libvirt)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class VmState(enum.Enum):
    """Lifecycle states; values are virsh's state words so CLI output matches virsh."""

    NOSTATE = "no state"
    RUNNING = "running"
    BLOCKED = "idle"
    PAUSED = "paused"
    SHUTDOWN = "in shutdown"
    SHUTOFF = "shut off"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"

    @property
    def is_active(self) -> bool:
        """True while the VM has a running process (it can be paused, forced off, ...)."""
        return self not in (VmState.SHUTOFF, VmState.CRASHED, VmState.NOSTATE)


@dataclass(frozen=True)
class VmInfo:
    """A VM as one connection reports it; `vm_id` is the UUID, stable across renames."""

    connection: str
    vm_id: str
    name: str
    state: VmState
    memory_kib: int = 0
    vcpus: int = 0
    persistent: bool = True
    autostart: bool = False
    reason: str = ""


@dataclass(frozen=True)
class VmStatsSample:
    """Raw cumulative counters of one VM at one moment (rates are derived by the sampler)."""

    vm_id: str
    timestamp: float
    cpu_time_ns: int = 0
    vcpus: int = 1
    memory_used_kib: int = 0
    memory_total_kib: int = 0
    #: True: `memory_used_kib` is the guest's own figure (balloon driver); False: the host's
    #: resident memory of the VM's process, which is not what the guest uses.
    memory_used_in_guest: bool = False
    disk_read_bytes: int = 0
    disk_write_bytes: int = 0
    net_rx_bytes: int = 0
    net_tx_bytes: int = 0
    disk_count: int = -1  # how many disks / NICs the VM has; -1 when the backend does not say
    nic_count: int = -1
    #: Cumulative VM exits by reason (built-in VMM only; empty where the hypervisor hides them).
    exits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VmRates:
    """Rates between two samples: what the graphs and the list's sparkline show."""

    vm_id: str
    timestamp: float
    cpu_percent: float = 0.0
    memory_used_kib: int = 0
    memory_total_kib: int = 0
    memory_used_in_guest: bool = False
    disk_read_bps: float = 0.0
    disk_write_bps: float = 0.0
    net_rx_bps: float = 0.0
    net_tx_bps: float = 0.0
    disk_count: int = -1
    nic_count: int = -1
    #: VM exits per second by reason; empty when the backend does not report exits.
    exits_per_s: dict[str, float] = field(default_factory=dict)


def rates_between(old: VmStatsSample, new: VmStatsSample) -> VmRates:
    """Derive per-second rates; counters that went backwards (VM restarted) count as zero."""
    dt = new.timestamp - old.timestamp
    if dt <= 0:
        dt = 1e-9

    def rate(a: int, b: int) -> float:
        return max(0, b - a) / dt

    cpu = rate(old.cpu_time_ns, new.cpu_time_ns) / 1e9 * 100.0 / max(1, new.vcpus)
    return VmRates(
        vm_id=new.vm_id,
        timestamp=new.timestamp,
        cpu_percent=min(100.0, cpu),
        memory_used_kib=new.memory_used_kib,
        memory_total_kib=new.memory_total_kib,
        memory_used_in_guest=new.memory_used_in_guest,
        disk_count=new.disk_count,
        nic_count=new.nic_count,
        disk_read_bps=rate(old.disk_read_bytes, new.disk_read_bytes),
        disk_write_bps=rate(old.disk_write_bytes, new.disk_write_bytes),
        net_rx_bps=rate(old.net_rx_bytes, new.net_rx_bytes),
        net_tx_bps=rate(old.net_tx_bytes, new.net_tx_bytes),
        exits_per_s={k: rate(old.exits.get(k, 0), n) for k, n in new.exits.items()},
    )


@dataclass
class DiskConfig:
    path: str
    readonly: bool = False
    size_bytes: int = 0  # > 0: create a new raw image of this size


@dataclass
class VmConfig:
    """What the new-VM wizard collects; each backend turns it into its own definition."""

    name: str
    memory_mib: int = 512
    vcpus: int = 1
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    iso: str = ""
    disks: list[DiskConfig] = field(default_factory=list)
    network: str = "user"  # "none", "user" (NAT), or a backend-specific name
    framebuffer: tuple[int, int] = (1024, 768)
    domain_type: str = "kvm"  # libvirt: "kvm" or "qemu" (TCG)
