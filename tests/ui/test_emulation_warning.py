"""The start warning for KVM guests where ring 0 is emulated: a window-modal question that leaves
the event loop running; Cancel means do not start. This host's real probe decides whether it
asks here; a plain-data sample covers the verdict this machine does not have."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from tests.fixtures.libvirtd import write_test_driver_xml
from tests.host.verdicts import measured_status
from tests.support import need, need_kvm
from tests.ui.conftest import run_until
from vmgui.host.probe import emulation_warning, probe_host_async
from vmgui.model.host import HostStatus, Verdict
from vmgui.ui.emulation_warning import (
    START_ANYWAY,
    SWITCH_AND_START,
    HostStatusCache,
    confirm_start,
    confirm_start_if_emulated,
)

VM_XML = """<domain type='{type}'><name>{name}</name><memory unit='MiB'>64</memory>
<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"""


@pytest.fixture(scope="module")
def host_status() -> HostStatus:
    need_kvm()
    return asyncio.run(probe_host_async())


@pytest.fixture(scope="module")
def emulated_status(host_status: HostStatus) -> HostStatus:
    """This host's real measurement where it emulates ring 0 (kvm_pvm), else a measured sample."""
    if host_status.verdict is Verdict.EMULATED:
        return host_status
    return measured_status(Verdict.EMULATED)


def _warning_box() -> QMessageBox | None:
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMessageBox) and w.objectName() == "emulationWarning" and w.isVisible():
            return w
    return None


def _answer(qt_loop: asyncio.AbstractEventLoop, coro: Any, button_text: str) -> tuple[bool, str]:
    """Run `coro`, wait for the warning, press `button_text`: (the result, the box's text).

    The loop keeps turning while the box is open (a timer fires meanwhile): no nested exec().
    """
    task = asyncio.ensure_future(coro)
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    run_until(qt_loop, lambda: _warning_box() is not None, what="the warning")
    box = _warning_box()
    assert box is not None
    seen = len(ticks)
    qt_loop.run_until_complete(asyncio.sleep(0.1))
    assert len(ticks) > seen, "the event loop stalled while the warning was open"
    assert not task.done()
    text = f"{box.text()}\n{box.informativeText()}"
    button = next(b for b in box.buttons() if b.text().replace("&", "") == button_text)
    button.click()
    result = qt_loop.run_until_complete(task)
    timer.stop()
    run_until(qt_loop, lambda: _warning_box() is None, what="the warning to close")
    return result, text


def test_kvm_vm_on_an_emulating_host_warns_and_cancel_refuses(
    qt_loop: asyncio.AbstractEventLoop, qtbot: QtBot, emulated_status: HostStatus
) -> None:
    parent = QWidget()
    parent.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)
    qtbot.addWidget(parent)
    parent.show()
    coro = confirm_start_if_emulated(parent, "kvm", emulated_status, "web1")
    proceed, info = _answer(qt_loop, coro, "Cancel")
    assert proceed is False
    assert "Start “web1” with KVM?" in info
    assert emulation_warning(emulated_status) in info
    assert "Use QEMU software emulation (TCG) instead" in info and "'qemu'" in info


def test_start_anyway_proceeds(
    qt_loop: asyncio.AbstractEventLoop, qtbot: QtBot, emulated_status: HostStatus
) -> None:
    proceed, _text = _answer(
        qt_loop, confirm_start_if_emulated(None, "kvm", emulated_status), START_ANYWAY
    )
    assert proceed is True


def test_no_question_when_there_is_nothing_to_warn_about(
    qt_loop: asyncio.AbstractEventLoop, emulated_status: HostStatus
) -> None:
    hardware = measured_status(Verdict.HARDWARE_ASSISTED)

    async def ask_all() -> list[bool]:
        return [
            await confirm_start_if_emulated(None, "qemu", emulated_status),  # TCG is the advice
            await confirm_start_if_emulated(None, "kvm", None),  # host not measured (yet)
            await confirm_start_if_emulated(None, "kvm", hardware),  # nothing to warn about
            await confirm_start_if_emulated(
                None, "kvm", emulated_status, uri="qemu+ssh://far/system"
            ),
        ]

    assert qt_loop.run_until_complete(ask_all()) == [True, True, True, True]
    assert _warning_box() is None


def test_this_hosts_measurement_decides_whether_a_kvm_start_asks(
    qt_loop: asyncio.AbstractEventLoop, host_status: HostStatus
) -> None:
    coro = confirm_start_if_emulated(None, "kvm", host_status, "web1")
    if host_status.verdict is Verdict.EMULATED:
        proceed, info = _answer(qt_loop, coro, "Cancel")
        assert proceed is False and emulation_warning(host_status) in info
    else:
        assert host_status.verdict is Verdict.HARDWARE_ASSISTED, host_status.reason
        assert qt_loop.run_until_complete(coro) is True
        assert _warning_box() is None


@pytest.fixture
def test_backend(qt_loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Any]:
    """A private, empty libvirt test driver: it accepts type='kvm' domains (the private daemon,
    without /dev/kvm access, cannot)."""
    try:
        from vmgui.backends.libvirt import LibvirtBackend
    except ImportError:
        need(False, "libvirt-python is not installed")
        raise
    node = write_test_driver_xml(tmp_path / "node.xml", 0)
    backend = LibvirtBackend(f"test://{node}", reconnect=False)
    qt_loop.run_until_complete(backend.connect())
    yield backend
    qt_loop.run_until_complete(backend.close())


def test_confirm_start_reads_the_vm_type_from_the_backend(
    qt_loop: asyncio.AbstractEventLoop, emulated_status: HostStatus, test_backend: Any
) -> None:
    from vmgui.model import VmConfig

    kvm_vm = qt_loop.run_until_complete(
        test_backend.define(VmConfig(name="kvm-guest", memory_mib=64, domain_type="kvm"))
    )
    tcg_vm = qt_loop.run_until_complete(
        test_backend.define(VmConfig(name="tcg-guest", memory_mib=64, domain_type="qemu"))
    )
    assert qt_loop.run_until_complete(
        confirm_start(None, test_backend, tcg_vm.vm_id, emulated_status)
    )
    proceed, text = _answer(
        qt_loop,
        confirm_start(None, test_backend, kvm_vm.vm_id, emulated_status, "kvm-guest"),
        "Cancel",
    )
    assert proceed is False and "kvm-guest" in text and SWITCH_AND_START in text

    # The offered way out really changes the VM, then lets the start go ahead.
    proceed, _text = _answer(
        qt_loop,
        confirm_start(None, test_backend, kvm_vm.vm_id, emulated_status, "kvm-guest"),
        SWITCH_AND_START,
    )
    assert proceed is True
    settings = qt_loop.run_until_complete(test_backend.get_settings(kvm_vm.vm_id))
    assert settings.domain_type == "qemu"
    assert qt_loop.run_until_complete(
        confirm_start(None, test_backend, kvm_vm.vm_id, emulated_status)
    )


def test_host_status_cache_probes_once(
    qt_loop: asyncio.AbstractEventLoop, host_status: HostStatus
) -> None:
    cache = HostStatusCache()

    async def twice() -> tuple[HostStatus, HostStatus]:
        a, b = await asyncio.gather(cache(), cache())
        return a, b

    a, b = qt_loop.run_until_complete(twice())
    assert a is b and a.verdict is host_status.verdict
    cache.set(host_status)
    assert qt_loop.run_until_complete(cache()) is host_status
