"""The New VM wizard driven like a user (widgets set, Next/Create pressed) against the private
libvirtd: it defines real TCG guests, picks the domain type the real host probe advises ('qemu'
with the emulation warning where ring 0 is emulated), and refuses bad input with a sentence
while keeping every field."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QRadioButton, QWizard
from pytestqt.qtbot import QtBot

from tests.fixtures.libvirtd import PrivateLibvirtd
from tests.host.verdicts import measured_status
from tests.support import need_kvm
from tests.ui.conftest import run_until
from vmgui.host.probe import emulation_warning, probe_host_async
from vmgui.model.host import DomainCapabilities, HostStatus, Verdict
from vmgui.ui import new_vm_rules as rules
from vmgui.ui.new_vm_wizard import NewVmWizard

GIB = 1024**3
NEXT = QWizard.WizardButton.NextButton
FINISH = QWizard.WizardButton.FinishButton
BACK = QWizard.WizardButton.BackButton


@pytest.fixture(scope="module")
def host_status() -> HostStatus:
    """This machine, measured once by the real probe (~0.5 s)."""
    need_kvm()
    return asyncio.run(probe_host_async())


@pytest.fixture
def lv_conn(libvirtd_uri: str) -> Iterator[Any]:
    """An independent libvirt connection: what libvirt really holds, and cleanup."""
    import libvirt

    conn = libvirt.open(libvirtd_uri)
    before = {d.UUIDString() for d in conn.listAllDomains()}
    yield conn
    for dom in conn.listAllDomains():
        if dom.UUIDString() in before:
            continue
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    conn.close()


def _click(qtbot: QtBot, button: QAbstractButton | None) -> None:
    assert button is not None and button.isEnabled(), "button is not clickable"
    if isinstance(button, QRadioButton | QCheckBox):  # on the indicator, not the empty width
        pos = QPoint(8, button.height() // 2)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=pos)
    else:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _open(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    status: HostStatus | None,
) -> NewVmWizard:
    async def provide() -> HostStatus:
        assert status is not None
        return status

    wizard = NewVmWizard([(backend.uri, "Private libvirtd", backend)], provide if status else None)
    qtbot.addWidget(wizard)
    wizard.show()
    run_until(qt_loop, wizard.facts_ready, what="host and connection facts")
    return wizard


def _kernel_page(qtbot: QtBot, wizard: NewVmWizard, kernel: Path, initrd: Path) -> None:
    page = wizard.source
    _click(qtbot, page.kernel_radio)
    page.kernel.setText(str(kernel))
    page.initrd.setText(str(initrd))
    page.cmdline.setText("console=ttyS0 quiet panic=-1 rdinit=/init")
    _leave_source_page(qtbot, wizard)


def _leave_source_page(qtbot: QtBot, wizard: NewVmWizard) -> None:
    """Next on the source page: the connection checks the file off the GUI thread, then the
    wizard moves on by itself."""
    _click(qtbot, wizard.button(NEXT))
    run_until(asyncio.get_event_loop(),
              lambda: wizard.currentPage() is wizard.resources
              or wizard.source.error.text() not in ("", "Checking the file…"),
              what="the file check")
    assert wizard.currentPage() is wizard.resources, wizard.source.error.text()


def _type_name(qtbot: QtBot, wizard: NewVmWizard, name: str) -> None:
    edit = wizard.naming.name
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, name)


def _wait_done(qt_loop: asyncio.AbstractEventLoop, wizard: NewVmWizard) -> None:
    run_until(
        qt_loop,
        lambda: not wizard.isVisible() or wizard.summary.error.isVisible(),
        what="the wizard to finish",
    )


def _name_finish_and_read_xml(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, wizard: NewVmWizard, lv_conn: Any, name: str
) -> Any:
    """Type the name, go to the summary, Finish; the domain XML libvirt now holds."""
    import xml.etree.ElementTree as ET

    _type_name(qtbot, wizard, name)
    _click(qtbot, wizard.button(NEXT))
    _click(qtbot, wizard.button(FINISH))
    _wait_done(qt_loop, wizard)
    assert not wizard.isVisible(), wizard.summary.error.text()
    return ET.fromstring(lv_conn.lookupByName(name).XMLDesc(0))


def test_creates_tcg_vm_with_new_disk_and_kernel_boot(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    lv_conn: Any,
    host_status: HostStatus,
    tcg_guest_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    kernel, initrd = tcg_guest_files
    name = f"wizard-tcg-{uuid.uuid4().hex[:6]}"
    disk = tmp_path / "images" / f"{name}.img"  # folder does not exist yet: made at Create
    wizard = _open(qtbot, qt_loop, backend, host_status)
    created: list[Any] = []
    wizard.vmCreated.connect(created.append)

    _kernel_page(qtbot, wizard, kernel, initrd)
    wizard.resources.memory.setValue(256)
    wizard.resources.vcpus.setValue(2)
    _click(qtbot, wizard.button(NEXT))

    assert wizard.currentPage() is wizard.storage
    assert wizard.storage.new_radio.isChecked()
    wizard.storage.disk_size.setValue(1)
    wizard.storage.path.setText(str(disk))
    _click(qtbot, wizard.button(NEXT))

    page = wizard.naming
    assert page.vm_name() == "vmlinuz"  # proposed from the kernel's file name
    if host_status.verdict is Verdict.EMULATED:
        # Ring 0 measured as emulated: 'qemu' by default, and the warning says why.
        assert page.qemu_radio.isChecked() and page.domain_type() == "qemu"
        assert page.warning.isVisible()
        assert page.warning.text() == emulation_warning(host_status)
    else:
        # Hardware-assisted: 'kvm' wherever the daemon offers it, and nothing to warn about.
        assert host_status.verdict is Verdict.HARDWARE_ASSISTED, host_status.reason
        offered = page.kvm_radio.isEnabled()
        assert page.domain_type() == ("kvm" if offered else "qemu")
        assert not page.warning.isVisible() and page.warning.text() == ""
        _click(qtbot, page.qemu_radio)  # this test makes a TCG guest either way
        assert page.domain_type() == "qemu"
    _type_name(qtbot, wizard, name)
    assert not page.name_error.isVisible()
    _click(qtbot, wizard.button(NEXT))

    assert wizard.currentPage() is wizard.summary
    summary = wizard.summary.summary_text()
    assert name in summary and "256 MiB" in summary and str(disk) in summary
    _click(qtbot, wizard.button(FINISH))
    _wait_done(qt_loop, wizard)
    assert not wizard.isVisible(), wizard.summary.error.text()
    assert wizard.result() == QWizard.DialogCode.Accepted.value

    dom = lv_conn.lookupByName(name)
    assert created and created[0].vm_id == dom.UUIDString()
    import xml.etree.ElementTree as ET

    xml = ET.fromstring(dom.XMLDesc(0))
    assert xml.get("type") == "qemu"
    assert int(xml.findtext("memory", "0")) == 256 * 1024  # KiB
    assert int(xml.findtext("vcpu", "0")) == 2
    assert xml.findtext("os/kernel") == str(kernel)
    assert xml.findtext("os/initrd") == str(initrd)
    assert xml.find("devices/disk/source").get("file") == str(disk)  # type: ignore[union-attr]
    assert os.stat(disk).st_size == 1 * GIB


def test_bad_inputs_are_refused_and_nothing_is_lost(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    lv_conn: Any,
    host_status: HostStatus,
    tcg_domain_xml: Any,
    tmp_path: Path,
) -> None:
    existing = f"wizard-existing-{uuid.uuid4().hex[:6]}"
    lv_conn.defineXML(tcg_domain_xml(existing))
    wizard = _open(qtbot, qt_loop, backend, host_status)

    # A nonexistent ISO: a sentence naming the file, the page is not left, the text stays.
    missing = str(tmp_path / "no-such-installer.iso")
    wizard.source.iso.setText(missing)
    _click(qtbot, wizard.button(NEXT))
    assert wizard.currentPage() is wizard.source
    assert wizard.source.error.isVisible()
    assert wizard.source.error.text() == f"The ISO image {missing} does not exist."
    assert wizard.source.iso.text() == missing

    iso = tmp_path / "debian-12-netinst.iso"
    iso.write_bytes(b"\0" * 4096)
    wizard.source.iso.setText(str(iso))
    assert not wizard.source.error.isVisible()
    _leave_source_page(qtbot, wizard)
    wizard.resources.memory.setValue(300)
    _click(qtbot, wizard.button(NEXT))
    _click(qtbot, wizard.storage.none_radio)
    _click(qtbot, wizard.button(NEXT))
    page = wizard.naming
    assert page.vm_name() == "debian-12-netinst"

    # A name libvirt's rules reject: live message, Next disabled, the typed name kept.
    _type_name(qtbot, wizard, "web/server")
    assert page.name_error.isVisible() and "not allowed" in page.name_error.text()
    assert page.name.text() == "web/server"
    assert not wizard.button(NEXT).isEnabled()

    # A name already on this connection (looked up when the wizard opened).
    _type_name(qtbot, wizard, existing)
    assert page.name_error.text() == (
        f"A VM named '{existing}' already exists on this connection; choose another name."
    )
    assert not wizard.button(NEXT).isEnabled()

    # A name taken behind the wizard's back: libvirt refuses at Create; the wizard stays open.
    racer = f"wizard-racer-{uuid.uuid4().hex[:6]}"
    lv_conn.defineXML(tcg_domain_xml(racer))
    _type_name(qtbot, wizard, racer)
    assert not page.name_error.isVisible()
    _click(qtbot, wizard.button(NEXT))
    _click(qtbot, wizard.button(FINISH))
    _wait_done(qt_loop, wizard)
    assert wizard.isVisible() and wizard.currentPage() is wizard.summary
    error = wizard.summary.error.text()
    assert racer in error and "already exists" in error and "\n" not in error
    assert wizard.button(FINISH).isEnabled() and wizard.button(BACK).isEnabled()
    assert not wizard.summary.progress.isVisible()
    # Everything typed is still there, on every page.
    _click(qtbot, wizard.button(BACK))
    assert page.name.text() == racer
    assert wizard.resources.memory.value() == 300
    assert wizard.source.iso.text() == str(iso)
    assert wizard.storage.none_radio.isChecked()
    assert [d.name() for d in lv_conn.listAllDomains() if d.name() == racer] == [racer]

    # Fixed: a free name goes through.
    name = f"wizard-iso-{uuid.uuid4().hex[:6]}"
    xml = _name_finish_and_read_xml(qtbot, qt_loop, wizard, lv_conn, name)
    assert xml.find("devices/disk[@device='cdrom']/source").get("file") == str(iso)  # type: ignore[union-attr]
    assert int(xml.findtext("memory", "0")) == 300 * 1024


def test_imports_an_existing_disk_image(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    lv_conn: Any,
    host_status: HostStatus,
    tmp_path: Path,
) -> None:
    image = tmp_path / "appliance.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\0" * 1020)  # only its path matters to define()
    wizard = _open(qtbot, qt_loop, backend, host_status)
    _click(qtbot, wizard.source.import_radio)
    wizard.source.image.setText(str(image))
    _leave_source_page(qtbot, wizard)
    _click(qtbot, wizard.button(NEXT))
    storage = wizard.storage
    assert storage.existing_radio.isChecked() and not storage.new_radio.isEnabled()
    _click(qtbot, wizard.button(NEXT))
    name = f"appliance-{uuid.uuid4().hex[:6]}"
    assert wizard.naming.vm_name() == "appliance"
    xml = _name_finish_and_read_xml(qtbot, qt_loop, wizard, lv_conn, name)
    disk = xml.find("devices/disk[@device='disk']")
    assert disk is not None
    assert disk.find("source").get("file") == str(image)  # type: ignore[union-attr]
    assert disk.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert image.stat().st_size == 1024  # the user's image is used, never rewritten


def test_a_failed_define_removes_the_new_disk(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    lv_conn: Any,
    host_status: HostStatus,
    tcg_guest_files: tuple[Path, Path],
    tcg_domain_xml: Any,
    tmp_path: Path,
) -> None:
    kernel, initrd = tcg_guest_files
    wizard = _open(qtbot, qt_loop, backend, host_status)
    _kernel_page(qtbot, wizard, kernel, initrd)
    _click(qtbot, wizard.button(NEXT))
    disk = tmp_path / "racer.img"
    wizard.storage.path.setText(str(disk))
    _click(qtbot, wizard.button(NEXT))
    racer = f"wizard-racer-{uuid.uuid4().hex[:6]}"
    lv_conn.defineXML(tcg_domain_xml(racer))
    _type_name(qtbot, wizard, racer)
    _click(qtbot, wizard.button(NEXT))
    _click(qtbot, wizard.button(FINISH))
    _wait_done(qt_loop, wizard)
    assert "already exists" in wizard.summary.error.text()
    assert not disk.exists()  # the image made for the refused VM was removed again
    assert wizard.storage.path.text() == str(disk)


def test_start_now_runs_the_new_vm(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    backend: Any,
    lv_conn: Any,
    host_status: HostStatus,
    tcg_guest_files: tuple[Path, Path],
) -> None:
    kernel, initrd = tcg_guest_files
    wizard = _open(qtbot, qt_loop, backend, host_status)
    _kernel_page(qtbot, wizard, kernel, initrd)
    wizard.resources.memory.setValue(128)
    _click(qtbot, wizard.button(NEXT))
    _click(qtbot, wizard.storage.none_radio)
    _click(qtbot, wizard.button(NEXT))
    name = f"wizard-start-{uuid.uuid4().hex[:6]}"
    _type_name(qtbot, wizard, name)
    wizard.naming.network.setCurrentIndex(wizard.naming.network.findData("none"))
    _click(qtbot, wizard.button(NEXT))
    _click(qtbot, wizard.summary.start_now)
    _click(qtbot, wizard.button(FINISH))
    assert wizard.summary.progress.isVisible()  # busy at once, inputs locked
    assert not wizard.button(FINISH).isEnabled() and not wizard.naming.isEnabled()
    assert wizard.button(QWizard.WizardButton.CancelButton).isEnabled()
    _wait_done(qt_loop, wizard)
    assert not wizard.isVisible(), wizard.summary.error.text()
    assert lv_conn.lookupByName(name).isActive()


def test_cancel_while_creating_undoes_what_lands(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    restartable_libvirtd: PrivateLibvirtd,
    host_status: HostStatus,
    tcg_guest_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """Cancel while the daemon is stuck: the wizard closes at once; when the definition lands
    later, the VM and the disk image the wizard made are removed again."""
    import libvirt

    from vmgui.backends.libvirt import LibvirtBackend

    daemon = restartable_libvirtd
    backend = LibvirtBackend(daemon.uri, reconnect=False)
    qt_loop.run_until_complete(backend.connect())
    conn = libvirt.open(daemon.uri)
    try:
        kernel, initrd = tcg_guest_files
        wizard = _open(qtbot, qt_loop, backend, host_status)
        _kernel_page(qtbot, wizard, kernel, initrd)
        _click(qtbot, wizard.button(NEXT))
        disk = tmp_path / "abandoned.img"
        wizard.storage.path.setText(str(disk))
        _click(qtbot, wizard.button(NEXT))
        name = f"wizard-cancel-{uuid.uuid4().hex[:6]}"
        _type_name(qtbot, wizard, name)
        _click(qtbot, wizard.button(NEXT))
        daemon.freeze()
        try:
            _click(qtbot, wizard.button(FINISH))
            run_until(qt_loop, lambda: wizard._define is not None, what="define under way")
            qt_loop.run_until_complete(asyncio.sleep(0.2))
            assert wizard.isVisible() and wizard.summary.progress.isVisible()
            _click(qtbot, wizard.button(QWizard.WizardButton.CancelButton))
            assert not wizard.isVisible()
            assert wizard.result() == QWizard.DialogCode.Rejected.value
        finally:
            daemon.thaw()

        def undone() -> bool:
            names = {d.name() for d in conn.listAllDomains()}
            return wizard._define is not None and wizard._define.done() and name not in names

        run_until(qt_loop, undone, timeout=15, what="the abandoned VM to be undone")
        run_until(qt_loop, lambda: not disk.exists(), timeout=5, what="its disk to be removed")
        assert wizard._define is not None
        assert wizard._define.result().name == name  # it did land, and was removed again
    finally:
        conn.close()
        qt_loop.run_until_complete(backend.close())


# --- the rules behind the pages (no daemon) ---------------------------------------------------


def test_type_advice_follows_the_measurement_and_the_connection(host_status: HostStatus) -> None:
    both = DomainCapabilities(uri="qemu:///system", domain_types=("kvm", "qemu"))
    # This host's real measurement, then both verdicts a measurement gives.
    samples = (measured_status(Verdict.EMULATED), measured_status(Verdict.HARDWARE_ASSISTED))
    for status in (host_status, *samples):
        assert status.verdict in (Verdict.EMULATED, Verdict.HARDWARE_ASSISTED), status.reason
        emulated = status.verdict is Verdict.EMULATED
        advice = rules.type_advice("qemu:///system", status, both)
        assert advice.default == ("qemu" if emulated else "kvm") and advice.kvm_offered
        assert advice.warning == emulation_warning(status) and bool(advice.warning) == emulated
    # A remote daemon runs guests on its own CPU: this host's measurement says nothing there.
    remote = DomainCapabilities(uri="qemu+ssh://far/system", domain_types=("kvm", "qemu"))
    far = rules.type_advice("qemu+ssh://far/system", host_status, remote)
    assert far.default == "kvm" and not far.warning
    tcg_only = DomainCapabilities(uri="qemu+ssh://far/system", domain_types=("qemu",))
    advice = rules.type_advice("qemu+ssh://far/system", None, tcg_only)
    assert advice.default == "qemu" and not advice.kvm_offered and "no KVM" in advice.note


def test_proposed_names_and_paths() -> None:
    assert rules.name_from_file("/isos/debian-12.5.0-amd64-netinst.iso") == (
        "debian-12.5.0-amd64-netinst"
    )
    assert rules.name_from_file("/img/Fedora Cloud.qcow2.xz") == "Fedora-Cloud"
    assert rules.unique_name("vm", {"vm", "vm-2"}) == "vm-3"
    assert rules.new_disk_problem("relative.img").endswith("must be absolute (start with /).")


def test_a_file_that_is_not_a_kernel_is_refused(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: Any, tmp_path: Path
) -> None:
    wizard = _open(qtbot, qt_loop, backend, None)
    page = wizard.source
    _click(qtbot, page.kernel_radio)
    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a kernel\n" * 50)
    page.kernel.setText(str(notes))
    _click(qtbot, wizard.button(NEXT))
    run_until(qt_loop, lambda: "not a kernel image" in page.error.text(), what="the refusal")
    assert wizard.currentPage() is page
    assert page.error.text() == (
        "notes.txt is not a kernel image (neither a Linux bzImage nor an ELF file)."
    )
