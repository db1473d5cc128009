"""Reading VMs from an open connection: the list, one VM, the statistics (blocking calls).

Run in the connection's executor, never on the event loop. Listing takes three round trips
whatever the number of VMs; statistics one (`getAllDomainStats`), never one per VM.
"""

from __future__ import annotations

import time

import libvirt

from vmgui.backends.libvirt import stats
from vmgui.model import VmInfo, VmStatsSample


def info_blocking(conn: libvirt.virConnect, uri: str, vm_id: str) -> VmInfo:
    """One VM's current state; raises libvirtError (VIR_ERR_NO_DOMAIN when it is gone)."""
    dom = conn.lookupByUUIDString(vm_id)
    state, reason = dom.state()
    _st, max_kib, _cur, vcpus, _cpu = dom.info()
    try:
        autostart = bool(dom.autostart())
    except libvirt.libvirtError:
        autostart = False
    return _vm_info(uri, vm_id, dom.name(), state, reason, max_kib, vcpus,
                    bool(dom.isPersistent()), autostart)


def list_blocking(conn: libvirt.virConnect, uri: str) -> list[VmInfo]:
    """Every VM (stats give state/memory/vCPUs in one call; two more for the flags)."""
    records = conn.getAllDomainStats(stats.LIST_GROUPS, 0)
    transient = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)
    autostart = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
    infos = []
    for dom, rec in records:
        vm_id = dom.UUIDString()
        state = int(rec.get("state.state", libvirt.VIR_DOMAIN_NOSTATE))
        reason = int(rec.get("state.reason", 0))
        max_kib = int(rec.get("balloon.maximum", 0))
        vcpus = int(rec.get("vcpu.maximum", rec.get("vcpu.current", 0)))
        if not max_kib or not vcpus:
            # drivers without those stats (test:///, inactive VMs on some versions)
            _st, max_kib, _cur, vcpus, _cpu = dom.info()
        infos.append(_vm_info(uri, vm_id, dom.name(), state, reason, max_kib, vcpus,
                              vm_id not in transient, vm_id in autostart))
    return infos


def _vm_info(
    uri: str, vm_id: str, name: str, state: int, reason: int, max_kib: int, vcpus: int,
    persistent: bool, autostart: bool,
) -> VmInfo:
    return VmInfo(
        connection=uri,
        vm_id=vm_id,
        name=name,
        state=stats.vm_state(state),
        memory_kib=int(max_kib),
        vcpus=int(vcpus),
        persistent=persistent,
        autostart=autostart,
        reason=stats.state_reason(state, reason),
    )


def stats_blocking(conn: libvirt.virConnect) -> list[VmStatsSample]:
    """Raw counters of every running VM, in one round trip."""
    records = conn.getAllDomainStats(
        stats.STATS_GROUPS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
    )
    now = time.monotonic()
    return stats.samples_from_records(((d.UUIDString(), r) for d, r in records), now)


def _uuids(conn: libvirt.virConnect, flags: int) -> set[str]:
    try:
        return {d.UUIDString() for d in conn.listAllDomains(flags)}
    except libvirt.libvirtError:
        return set()
