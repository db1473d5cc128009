"""libvirt domain capabilities: parsing real and documented XML, and querying real daemons.

(vmgui/backends/libvirt/domcaps.py is part of the host-probe work, so its tests live here.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vmgui.backends.libvirt import domcaps as dc

SAMPLES = Path(__file__).parent / "samples"


def read(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_parse_real_tcg_only_capabilities() -> None:
    """Captured from Debian 12's libvirt 9.0 running unprivileged (no /dev/kvm access)."""
    guests = {g.arch: g for g in dc.parse_capabilities(read("libvirt_caps_session_tcg_only.xml"))}
    assert set(guests) == {"i686", "x86_64"}
    x86 = guests["x86_64"]
    assert x86.domain_types == ("qemu",)
    assert x86.emulator == "/usr/bin/qemu-system-x86_64"
    assert x86.machines[:2] == ("pc", "q35")
    assert "microvm" in x86.machines and "pc-q35-7.2" in x86.machines
    assert x86.machines.index("pc-q35-7.2") < x86.machines.index("pc-q35-2.4")
    assert x86.max_cpus == 288


def test_parse_kvm_host_capabilities_orders_types_and_versions() -> None:
    guests = {g.arch: g for g in dc.parse_capabilities(read("libvirt_caps_kvm_host.xml"))}
    x86 = guests["x86_64"]
    assert x86.domain_types == ("kvm", "qemu")
    assert x86.machines == (
        "pc",
        "q35",
        "microvm",
        "pc-q35-10.0",
        "pc-q35-7.2",
        "pc-q35-6.2",
        "pc-i440fx-7.2",
    )
    assert guests["aarch64"].domain_types == ("qemu",)


def test_parse_domain_capabilities_real_and_efi() -> None:
    tcg = dc.parse_domain_capabilities(read("libvirt_domcaps_qemu.xml"))
    assert (tcg.domain_type, tcg.machine, tcg.max_vcpus) == ("qemu", "pc-i440fx-7.2", 255)
    assert tcg.firmware == () and tcg.loaders == () and tcg.loader_types == ("rom", "pflash")
    kvm = dc.parse_domain_capabilities(read("libvirt_domcaps_kvm_efi.xml"))
    assert kvm.domain_type == "kvm" and kvm.firmware == ("bios", "efi")
    assert kvm.loaders[1] == "/usr/share/OVMF/OVMF_CODE_4M.fd"


def test_combine_keeps_only_types_domcaps_accepted() -> None:
    guest = dc.parse_capabilities(read("libvirt_caps_kvm_host.xml"))[0]
    tcg = dc.parse_domain_capabilities(read("libvirt_domcaps_qemu.xml"))
    caps = dc.combine("qemu:///system", guest, [tcg], ["kvm: the accel 'kvm' is not supported"])
    assert caps.domain_types == ("qemu",) and not caps.kvm and caps.error == ""
    assert caps.firmware == ("bios",)
    both = dc.combine(
        "qemu:///system",
        guest,
        [dc.parse_domain_capabilities(read("libvirt_domcaps_kvm_efi.xml")), tcg],
        [],
    )
    assert both.kvm and both.domain_types == ("kvm", "qemu")
    assert both.firmware[:2] == ("bios", "efi") and both.max_vcpus == 4096


def test_combine_when_every_type_fails_reports_why() -> None:
    guest = dc.parse_capabilities(read("libvirt_caps_kvm_host.xml"))[0]
    caps = dc.combine("qemu:///x", guest, [], ["kvm: no", "qemu: emulator missing"])
    assert caps.domain_types == () and caps.error == "kvm: no; qemu: emulator missing"


@pytest.mark.parametrize(
    ("xml", "message"),
    [("<capabilities", "unreadable capabilities XML"), ("<domain/>", "expected <capabilities>")],
)
def test_bad_xml_is_one_clear_line(xml: str, message: str) -> None:
    with pytest.raises(dc.DomainCapabilitiesError, match=message):
        dc.parse_capabilities(xml)


def test_query_test_driver_and_unreachable_uri() -> None:
    """Real libvirt: the test driver has no domcaps API and only i686 guests."""
    assert dc.query("test:///default", "i686").domain_types == ("test",)
    assert "no x86_64 guests" in dc.query("test:///default", "x86_64").error
    missing = dc.query("qemu+unix:///session?socket=/nonexistent/sock")
    assert missing.error and "\n" not in missing.error and missing.domain_types == ()


def test_fetch_from_private_libvirtd(libvirtd_uri: str) -> None:
    """A real libvirtd + QEMU: TCG is offered; kvm only if its daemon can open /dev/kvm."""
    caps = asyncio.run(dc.fetch_domain_capabilities(libvirtd_uri))
    assert caps.error == "" and caps.arch == "x86_64"
    assert "qemu" in caps.domain_types
    assert caps.machines[:2] == ("pc", "q35") and "bios" in caps.firmware
    assert caps.emulator.endswith("qemu-system-x86_64")
