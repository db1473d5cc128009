"""The New VM wizard on the built-in connection, driven like a user: a test guest becomes a VM
that starts under a real vmgui-vmm; every bad field gets its sentence and keeps its value."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QRadioButton, QWizard
from pytestqt.qtbot import QtBot

from tests.fixtures.builtin import BuiltinEnv
from tests.support import need_kvm, need_tool
from tests.ui.conftest import run_until
from vmgui.backends.builtin import BuiltinBackend, demo_linux
from vmgui.model import DiskConfig, VmConfig, VmState
from vmgui.model.host import HostStatus, Verdict
from vmgui.ui.new_vm_wizard import NewVmWizard

NEXT = QWizard.WizardButton.NextButton
FINISH = QWizard.WizardButton.FinishButton
Build = Callable[..., Path]


@pytest.fixture
def backend(qt_loop: asyncio.AbstractEventLoop, builtin_env: BuiltinEnv) -> Iterator[BuiltinBackend]:
    b = BuiltinBackend()
    qt_loop.run_until_complete(b.connect())
    yield b
    qt_loop.run_until_complete(b.close())


def click(qtbot: QtBot, button: QAbstractButton | None) -> None:
    assert button is not None and button.isEnabled(), "button is not clickable"
    if isinstance(button, QRadioButton | QCheckBox):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))
    else:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def open_wizard(qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop,
                backend: BuiltinBackend, host: HostStatus | None = None) -> NewVmWizard:
    async def provide() -> HostStatus:
        assert host is not None
        return host

    wizard = NewVmWizard([(backend.uri, backend.display_name, backend)],
                         provide if host else None)
    qtbot.addWidget(wizard)
    wizard.show()
    run_until(qt_loop, wizard.facts_ready, what="connection facts")
    return wizard


def next_page(qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, wizard: NewVmWizard,
              error: Callable[[], str] | None = None) -> str:
    """Press Next; wait until the page changed or a sentence other than "Checking…" shows."""
    page = wizard.currentPage()
    click(qtbot, wizard.button(NEXT))

    def settled() -> bool:
        text = error() if error else ""
        return wizard.currentPage() is not page or (bool(text) and "Checking" not in text)

    run_until(qt_loop, settled, what="the page to be checked")
    return error() if error and wizard.currentPage() is page else ""


def source_error(wizard: NewVmWizard) -> Callable[[], str]:
    return lambda: wizard.source.error.text() if wizard.source.error.isVisible() else ""


@pytest.mark.slow
def test_wizard_creates_and_starts_a_vm_from_a_test_guest(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend, build_guest: Build
) -> None:
    need_kvm()
    kernel = build_guest("power_button")
    wizard = open_wizard(qtbot, qt_loop, backend)
    assert wizard.source.demo_box.isVisibleTo(wizard.source)  # built-in connections offer it
    click(qtbot, wizard.source.kernel_radio)
    wizard.source.kernel.setText(str(kernel))
    assert next_page(qtbot, qt_loop, wizard, source_error(wizard)) == ""
    assert wizard.currentPage() is wizard.resources
    wizard.resources.memory.setValue(32)
    next_page(qtbot, qt_loop, wizard)
    click(qtbot, wizard.storage.none_radio)
    next_page(qtbot, qt_loop, wizard)
    assert wizard.naming.vm_name().startswith("power_button-")  # the cached guest file name
    next_page(qtbot, qt_loop, wizard)
    assert wizard.currentPage() is wizard.summary
    wizard.summary.start_now.setChecked(True)
    click(qtbot, wizard.button(FINISH))
    run_until(qt_loop, lambda: not wizard.isVisible(), what="the wizard to finish")
    assert wizard.created is not None
    vm_id = wizard.created.vm_id

    async def running() -> VmState:
        return next(v for v in await backend.list_vms() if v.vm_id == vm_id).state

    assert qt_loop.run_until_complete(running()) is VmState.RUNNING
    qt_loop.run_until_complete(backend.force_off(vm_id))


def test_bad_kernel_is_one_sentence_and_kept(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend, tmp_path: Path
) -> None:
    junk = tmp_path / "vmlinuz"
    junk.write_bytes(b"\x7fELF" + bytes(4000))
    wizard = open_wizard(qtbot, qt_loop, backend)
    click(qtbot, wizard.source.kernel_radio)
    wizard.source.kernel.setText(str(junk))
    wizard.source.cmdline.setText("console=ttyS0 mine")
    problem = next_page(qtbot, qt_loop, wizard, source_error(wizard))
    assert "is not a bzImage or PVH ELF kernel" in problem
    assert wizard.currentPage() is wizard.source
    assert wizard.source.kernel.text() == str(junk)
    assert wizard.source.cmdline.text() == "console=ttyS0 mine"


def test_disk_of_another_vm_is_refused_on_the_first_page(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend,
    build_guest: Build, tmp_path: Path
) -> None:
    disk = tmp_path / "taken.img"
    disk.write_bytes(bytes(1 << 20))
    kernel = build_guest("power_button")
    qt_loop.run_until_complete(backend.define(VmConfig(
        name="owner", memory_mib=32, kernel=str(kernel), network="none",
        disks=[DiskConfig(str(disk))],
    )))
    wizard = open_wizard(qtbot, qt_loop, backend)
    click(qtbot, wizard.source.import_radio)
    wizard.source.image.setText(str(disk))
    problem = next_page(qtbot, qt_loop, wizard, source_error(wizard))
    assert problem == f"The disk image {disk} is already the disk of the VM “owner”."
    assert wizard.source.image.text() == str(disk)


def test_memory_beyond_free_memory_is_refused(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend, build_guest: Build
) -> None:
    kernel = build_guest("power_button")
    wizard = open_wizard(qtbot, qt_loop, backend)
    click(qtbot, wizard.source.kernel_radio)
    wizard.source.kernel.setText(str(kernel))
    next_page(qtbot, qt_loop, wizard, source_error(wizard))
    assert wizard.currentPage() is wizard.resources
    wizard.resources.memory.setValue(wizard.resources.memory.maximum())
    click(qtbot, wizard.button(NEXT))
    assert wizard.currentPage() is wizard.resources
    assert "more memory than this computer has free" in wizard.resources.caution.text()
    wizard.resources.memory.setValue(64)
    click(qtbot, wizard.button(NEXT))
    assert wizard.currentPage() is wizard.storage


def test_demo_builds_its_grub_iso_and_defines_the_vm(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend,
    builtin_env: BuiltinEnv
) -> None:
    need_tool("grub-mkrescue")
    wizard = open_wizard(qtbot, qt_loop, backend)
    click(qtbot, wizard.source.demo_radio)
    for _ in range(3):
        next_page(qtbot, qt_loop, wizard)
    assert wizard.storage.kind() == "none" and wizard.naming.vm_name() == "grub-demo"
    next_page(qtbot, qt_loop, wizard)
    assert "Demo: a GRUB boot menu" in wizard.summary.summary_text()
    click(qtbot, wizard.button(FINISH))
    run_until(qt_loop, lambda: not wizard.isVisible(), what="the wizard to finish")
    assert wizard.created is not None
    settings = qt_loop.run_until_complete(backend.get_settings(wizard.created.vm_id))
    iso = Path(settings.cdroms[0].media)
    assert iso.is_file() and iso.is_relative_to(builtin_env.data.parent / "xdg-cache")


def test_demo_linux_is_refused_with_its_reason_on_an_emulated_host(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend
) -> None:
    emulated = HostStatus(Verdict.EMULATED, "Guest kernels are emulated here.", "measured")
    wizard = open_wizard(qtbot, qt_loop, backend, emulated)
    assert not wizard.source.demo_linux_radio.isEnabled()
    assert "needs hardware-assisted virtualization" in wizard.source.demo_linux_hint.text()


def test_demo_linux_from_the_cache_defines_a_kernel_vm(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend,
    build_guest: Build
) -> None:
    """Already fetched once (the cache holds it): Create defines the VM at once."""
    cache = demo_linux.demo_linux_dir()
    cache.mkdir(parents=True)
    (cache / "vmlinuz").write_bytes(build_guest("power_button").read_bytes())
    demo_linux.write_initramfs(cache / "initramfs.cpio", Path("/bin/true"))
    fast = HostStatus(Verdict.HARDWARE_ASSISTED, "Hardware-assisted.", "measured")
    wizard = open_wizard(qtbot, qt_loop, backend, fast)
    click(qtbot, wizard.source.demo_linux_radio)
    for _ in range(4):
        next_page(qtbot, qt_loop, wizard)
    assert wizard.naming.vm_name() == "demo-linux"
    assert "Demo Linux" in wizard.summary.summary_text()
    click(qtbot, wizard.button(FINISH))
    run_until(qt_loop, lambda: not wizard.isVisible(), what="the wizard to finish")
    assert wizard.created is not None
    settings = qt_loop.run_until_complete(backend.get_settings(wizard.created.vm_id))
    assert settings.kernel == str(cache / "vmlinuz")
    assert settings.cmdline == demo_linux.CMDLINE


def test_bad_iso_and_bad_name_are_sentences_and_kept(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, backend: BuiltinBackend, tmp_path: Path
) -> None:
    fake = tmp_path / "installer.iso"
    fake.write_bytes(bytes(64 * 1024))
    wizard = open_wizard(qtbot, qt_loop, backend)
    click(qtbot, wizard.source.iso_radio)
    wizard.source.iso.setText(str(fake))
    problem = next_page(qtbot, qt_loop, wizard, source_error(wizard))
    assert problem == f"The file {fake} is not an ISO 9660 image."
    assert wizard.source.iso.text() == str(fake)

    click(qtbot, wizard.source.demo_radio)  # a source that passes, to reach the name page
    for _ in range(3):
        next_page(qtbot, qt_loop, wizard)
    assert wizard.currentPage() is wizard.naming
    wizard.naming.name.setText("bad/name")
    assert "contains characters that are not allowed" in wizard.naming.name_error.text()
    assert not wizard.button(NEXT).isEnabled() and wizard.naming.name.text() == "bad/name"
