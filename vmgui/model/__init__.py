"""Plain dataclasses: no Qt, no libvirt."""

from vmgui.model.connection import ConnectionState, ConnectionStatus
from vmgui.model.storage import StorageItem
from vmgui.model.vm import (
    DiskConfig,
    VmConfig,
    VmInfo,
    VmRates,
    VmState,
    VmStatsSample,
    rates_between,
)

__all__ = [
    "ConnectionState",
    "ConnectionStatus",
    "DiskConfig",
    "StorageItem",
    "VmConfig",
    "VmInfo",
    "VmRates",
    "VmState",
    "VmStatsSample",
    "rates_between",
]
