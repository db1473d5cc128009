"""The libvirt backend: `LibvirtBackend(uri)` plus helpers for the command line.

For `vmgui list`, the CLI calls `list_connections(uris)` (or `list_all(uris)`) inside an asyncio
loop; each URI is opened, listed and closed concurrently, and a failing connection is reported
as a BackendError row instead of hiding the others.
"""

from __future__ import annotations

import asyncio
import os

# libvirt's client logs warnings (e.g. "getaddrinfo failed" for an unresolvable host name)
# straight to stderr, where they garble `vmgui list` and the terminal the GUI started from.
# vmgui reports what matters as sentences itself; a user's own LIBVIRT_LOG_OUTPUTS still wins.
# Read once, when libvirt initialises on its first import: so this comes before any of ours.
os.environ.setdefault("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null")

from vmgui.backends.base import BackendError
from vmgui.backends.libvirt.backend import LibvirtBackend
from vmgui.backends.libvirt.credentials import AskCredentials, CredentialPrompt
from vmgui.backends.libvirt.errors import validate_uri
from vmgui.model import VmInfo

__all__ = [
    "AskCredentials",
    "CredentialPrompt",
    "LibvirtBackend",
    "list_all",
    "list_connections",
    "validate_uri",
]


async def _list_one(uri: str) -> list[tuple[str, VmInfo | BackendError]]:
    backend = LibvirtBackend(uri, reconnect=False)
    try:
        await backend.connect()
        vms = await backend.list_vms()
    except BackendError as exc:
        return [(uri, exc)]
    finally:
        await backend.close()
    return [(uri, vm) for vm in sorted(vms, key=lambda v: v.name)]


async def list_connections(uris: list[str]) -> list[tuple[str, VmInfo | BackendError]]:
    """Every VM of every URI as (uri, VmInfo); a URI that fails gives one (uri, BackendError).

    Rows keep the order of `uris`, VMs sorted by name within a connection.
    """
    results = await asyncio.gather(*(_list_one(uri) for uri in uris))
    return [row for rows in results for row in rows]


async def list_all(uris: list[str]) -> list[VmInfo]:
    """Every VM of every URI; raises the first connection's BackendError if any fails."""
    vms: list[VmInfo] = []
    for _uri, item in await list_connections(uris):
        if isinstance(item, BackendError):
            raise item
        vms.append(item)
    return vms
