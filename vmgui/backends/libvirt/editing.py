"""Reading and changing a defined VM's settings (blocking calls, run in the executor).

The XML side (which elements a setting lives in) is domain_settings.py's; this module talks to
the connection: the inactive definition is rewritten and validated by libvirt, CD media of a
running VM change live, everything else waits for the next start.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import libvirt

from vmgui.backends.libvirt import domain_settings, domcaps
from vmgui.model.vm_settings import ApplyResult, VmSettings


def settings_blocking(conn: libvirt.virConnect, vm_id: str) -> VmSettings:
    dom = conn.lookupByUUIDString(vm_id)
    settings = domain_settings.read_settings(
        dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), bool(dom.autostart())
    )
    try:
        guests = domcaps.parse_capabilities(conn.getCapabilities())
    except (libvirt.libvirtError, domcaps.DomainCapabilitiesError):
        return settings
    arch = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("os/type")
    wanted = arch.get("arch", "x86_64") if arch is not None else "x86_64"
    offered = [t for g in guests if g.arch == wanted for t in g.domain_types]
    types = tuple(dict.fromkeys([*offered, settings.domain_type]))
    return replace(settings, domain_types=types)


def apply_blocking(conn: libvirt.virConnect, vm_id: str, new: VmSettings) -> ApplyResult:
    dom = conn.lookupByUUIDString(vm_id)
    inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    old = domain_settings.read_settings(inactive, bool(dom.autostart()))
    conn.defineXMLFlags(
        domain_settings.apply_settings(inactive, new), libvirt.VIR_DOMAIN_DEFINE_VALIDATE
    )
    if new.autostart != old.autostart:
        dom.setAutostart(int(new.autostart))
    running = bool(dom.isActive())
    if running:  # media changes like a real drive; the rest waits for the next start
        live = {c.device: c.media for c in domain_settings.read_settings(
            dom.XMLDesc(0), False).cdroms}
        for drive in new.cdroms:
            xml = domain_settings.cdrom_device_xml(inactive, drive)
            if xml is not None and live.get(drive.device, drive.media) != drive.media:
                dom.updateDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    return ApplyResult(
        restart_needed=running and domain_settings.settings_need_restart(old, new)
    )
