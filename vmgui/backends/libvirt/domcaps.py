"""What a libvirt connection can run: domain types (kvm = hardware-assisted, qemu = TCG),
machine types and firmware, parsed from getCapabilities / getDomainCapabilities XML.

Parsing is pure (`parse_capabilities`, `parse_domain_capabilities`, `combine`);
`read_capabilities` asks an open connection (LibvirtBackend.domain_capabilities passes its own,
so a connection that needed credentials is not opened a second time); `fetch_domain_capabilities`
opens a private one for `vmgui host-check --connect URI`, where no backend exists.
"""

from __future__ import annotations

import asyncio
import platform
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vmgui.model.host import DomainCapabilities

#: Domain types in the order they are worth trying (hardware-assisted first).
PREFERRED_TYPES = ("kvm", "qemu")


class DomainCapabilitiesError(Exception):
    """The XML could not be understood; str() is one line."""


@dataclass(frozen=True)
class GuestArch:
    """One <guest> entry of getCapabilities (hvm only)."""

    arch: str
    emulator: str
    domain_types: tuple[str, ...]
    machines: tuple[str, ...]  # aliases ("pc", "q35") first, then versioned names
    max_cpus: int = 0


@dataclass(frozen=True)
class DomainTypeInfo:
    """What getDomainCapabilities says about one (arch, domain type)."""

    domain_type: str
    machine: str = ""
    max_vcpus: int = 0
    firmware: tuple[str, ...] = ()
    loaders: tuple[str, ...] = ()
    loader_types: tuple[str, ...] = ()
    os_supported: bool = True


def _root(xml: str, tag: str) -> ET.Element:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise DomainCapabilitiesError(f"unreadable {tag} XML: {e}") from None
    if root.tag != tag:
        raise DomainCapabilitiesError(f"expected <{tag}>, got <{root.tag}>")
    return root


def parse_capabilities(xml: str) -> list[GuestArch]:
    """The hvm guest architectures of a getCapabilities document."""
    guests = []
    for guest in _root(xml, "capabilities").findall("guest"):
        if (guest.findtext("os_type") or "").strip() != "hvm":
            continue
        arch = guest.find("arch")
        if arch is None:
            continue
        aliases: list[str] = []
        versioned: list[str] = []
        max_cpus = 0
        for m in arch.findall("machine"):
            name = (m.text or "").strip()
            if not name:
                continue
            (aliases if m.get("canonical") else versioned).append(name)
            max_cpus = max(max_cpus, _int(m.get("maxCpus")))
        types = [d.get("type", "") for d in arch.findall("domain")]
        # Machines listed inside <domain> apply to that type only; they are the same names.
        for d in arch.findall("domain"):
            for m in d.findall("machine"):
                name = (m.text or "").strip()
                if name and name not in aliases and name not in versioned:
                    (aliases if m.get("canonical") else versioned).append(name)
        guests.append(
            GuestArch(
                arch=arch.get("name", ""),
                emulator=(arch.findtext("emulator") or "").strip(),
                domain_types=tuple(_ordered(t for t in types if t)),
                machines=_machine_order(aliases, versioned),
                max_cpus=max_cpus,
            )
        )
    return guests


def parse_domain_capabilities(xml: str) -> DomainTypeInfo:
    """Firmware, default machine and vCPU limit from a getDomainCapabilities document."""
    root = _root(xml, "domainCapabilities")
    os_el = root.find("os")
    firmware: list[str] = []
    loaders: list[str] = []
    loader_types: list[str] = []
    os_supported = os_el is not None and os_el.get("supported") == "yes"
    if os_el is not None:
        firmware = _enum_values(os_el, "firmware")
        loader = os_el.find("loader")
        if loader is not None and loader.get("supported") == "yes":
            loaders = [(v.text or "").strip() for v in loader.findall("value") if v.text]
            loader_types = _enum_values(loader, "type")
    vcpu = root.find("vcpu")
    return DomainTypeInfo(
        domain_type=(root.findtext("domain") or "").strip(),
        machine=(root.findtext("machine") or "").strip(),
        max_vcpus=_int(vcpu.get("max")) if vcpu is not None else 0,
        firmware=tuple(firmware),
        loaders=tuple(loaders),
        loader_types=tuple(loader_types),
        os_supported=os_supported,
    )


def combine(
    uri: str,
    guest: GuestArch | None,
    per_type: list[DomainTypeInfo] | None,
    errors: list[str],
) -> DomainCapabilities:
    """One DomainCapabilities from the capabilities entry and each type's domcaps.

    A domain type counts only if getDomainCapabilities accepted it (libvirt can list "kvm"
    while domcaps refuses it, e.g. when its daemon cannot use /dev/kvm). `per_type` None
    means the driver has no domcaps at all; then getCapabilities is taken as is.
    """
    if guest is None:
        return DomainCapabilities(uri=uri, error="; ".join(errors) or "no hvm guest support")
    if per_type is None:
        per_type, types = [], guest.domain_types
    else:
        accepted = {t.domain_type for t in per_type if t.os_supported}
        types = tuple(t for t in guest.domain_types if t in accepted)
    firmware: list[str] = []
    if guest.arch in ("x86_64", "i686") and types:
        firmware.append("bios")  # SeaBIOS ships with QEMU; libvirt's default on x86
    for info in per_type:
        for name in (*info.firmware, *info.loaders):
            if name not in firmware:
                firmware.append(name)
    max_vcpus = max([t.max_vcpus for t in per_type] + [guest.max_cpus])
    error = "" if types else "; ".join(errors) or "no usable domain type"
    return DomainCapabilities(
        uri=uri,
        arch=guest.arch,
        emulator=guest.emulator,
        domain_types=types,
        machines=guest.machines,
        firmware=tuple(firmware),
        max_vcpus=max_vcpus,
        error=error,
    )


def host_arch() -> str:
    """libvirt's name for this machine's architecture."""
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)


def query(uri: str, arch: str | None = None) -> DomainCapabilities:
    """Blocking: open `uri`, read its capabilities, close it. Never raises."""
    arch = arch or host_arch()
    try:
        import libvirt

        from vmgui.backends.base import BackendError
        from vmgui.backends.libvirt.errors import clean_message, silence_stderr, validate_uri
    except ImportError:
        return DomainCapabilities(uri=uri, error="libvirt-python is not installed")
    try:
        uri = validate_uri(uri)
    except BackendError as e:
        return DomainCapabilities(uri=uri, error=str(e))
    silence_stderr()
    try:
        conn = libvirt.open(uri)  # domcaps needs read-write; capabilities alone do not
    except libvirt.libvirtError:
        try:
            conn = libvirt.openReadOnly(uri)
        except libvirt.libvirtError as e:
            return DomainCapabilities(uri=uri, error=clean_message(e))
    try:
        return read_capabilities(conn, uri, arch)
    finally:
        conn.close()


def read_capabilities(conn: Any, uri: str, arch: str | None = None) -> DomainCapabilities:
    """Blocking: what the open connection `conn` can run for `arch`. Never raises."""
    import libvirt

    from vmgui.backends.libvirt.errors import clean_message

    arch = arch or host_arch()
    try:
        all_guests = parse_capabilities(conn.getCapabilities())
        guests = [g for g in all_guests if g.arch == arch]
        guest = guests[0] if guests else None
        per_type: list[DomainTypeInfo] | None = []
        errors: list[str] = []
        if guest is None:
            offered = ", ".join(sorted({g.arch for g in all_guests})) or "none"
            errors.append(f"no {arch} guests on this connection (it offers: {offered})")
        for dtype in guest.domain_types if guest else ():
            try:
                xml = conn.getDomainCapabilities(None, arch, None, dtype, 0)
                assert per_type is not None
                per_type.append(parse_domain_capabilities(xml))
            except libvirt.libvirtError as e:
                if e.get_error_code() in (
                    libvirt.VIR_ERR_NO_SUPPORT,
                    libvirt.VIR_ERR_OPERATION_DENIED,
                ):
                    # No domcaps from this driver (test:///) or for a read-only connection:
                    # getCapabilities alone has to do.
                    per_type, errors = None, []
                    break
                errors.append(f"{dtype}: {clean_message(e)}")
        return combine(uri, guest, per_type, errors)
    except libvirt.libvirtError as e:
        return DomainCapabilities(uri=uri, error=clean_message(e))
    except DomainCapabilitiesError as e:
        return DomainCapabilities(uri=uri, error=str(e))


async def fetch_domain_capabilities(uri: str, arch: str | None = None) -> DomainCapabilities:
    """`query` on the default executor, so the event loop (and the GUI) never blocks."""
    return await asyncio.get_running_loop().run_in_executor(None, query, uri, arch)


def _machine_order(aliases: list[str], others: list[str]) -> tuple[str, ...]:
    """Aliases ("pc", "q35"), then unversioned names, then versioned ones newest first."""

    def version(name: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", name.rpartition("-")[2]))

    plain = sorted(n for n in set(others) if not version(n))
    versioned = sorted(
        (n for n in set(others) if version(n)),
        key=lambda n: (n.rpartition("-")[0], version(n)),
        reverse=True,
    )
    return tuple(sorted(set(aliases))) + tuple(plain) + tuple(versioned)


def _enum_values(parent: ET.Element, name: str) -> list[str]:
    for enum in parent.findall("enum"):
        if enum.get("name") == name:
            return [(v.text or "").strip() for v in enum.findall("value") if v.text]
    return []


def _ordered(types: Iterable[str]) -> list[str]:
    seen = list(dict.fromkeys(types))
    return sorted(seen, key=lambda t: PREFERRED_TYPES.index(t) if t in PREFERRED_TYPES else 99)


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
