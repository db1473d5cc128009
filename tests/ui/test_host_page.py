"""The "This computer" page: renders a real probe, agrees with `vmgui host-check`, and probes
without blocking the Qt event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from tests.host.verdicts import measured_status
from tests.support import need_kvm
from vmgui.app import make_backend
from vmgui.host.probe import judge
from vmgui.model.host import (
    DomainCapabilities,
    HostCpu,
    HostStatus,
    KvmDevice,
    KvmModule,
    Verdict,
)
from vmgui.ui.host_page import HostPage

REPO = Path(__file__).resolve().parents[2]


def assert_measured_page(page: HostPage, status: HostStatus) -> None:
    """The page shows a measured `status` (emulated or hardware-assisted) with its evidence."""
    assert page.section_titles() == ["Processor", "KVM (/dev/kvm)", "Measured guest speed"]
    text = page.text()
    assert "Guest ring 0" in text and status.module.name in text
    if status.verdict is Verdict.EMULATED:
        assert page.headline.text().startswith("Emulated: ")
        assert "#f9ab00" in page.banner.styleSheet()  # amber banner
        assert "TCG" in text
    else:
        assert status.verdict is Verdict.HARDWARE_ASSISTED, status.reason
        assert page.headline.text().startswith("Hardware-assisted: ")
        assert "#34a853" in page.banner.styleSheet()  # green banner
        assert "type 'kvm'" in text


@pytest.mark.parametrize("verdict", [Verdict.EMULATED, Verdict.HARDWARE_ASSISTED])
def test_measured_status_of_either_verdict_is_shown(qtbot: QtBot, verdict: Verdict) -> None:
    """Both verdicts a measurement gives, whichever this machine has."""
    status = measured_status(verdict)
    page = HostPage()
    qtbot.addWidget(page)
    page.set_status(status)
    assert page.headline.text() == status.headline
    assert_measured_page(page, status)


def test_probe_on_the_loop_shows_the_same_verdict_as_the_cli(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop
) -> None:
    need_kvm()
    page = HostPage()
    qtbot.addWidget(page)
    page.resize(900, 800)
    page.show()
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The main window passes every backend; the built-in one is this page, not a host.
        builtin = make_backend("builtin:///")
        status = qt_loop.run_until_complete(page.start_probe((builtin,), executor=pool))
    timer.stop()
    assert status is not None and page.status is status and status.connections == ()
    # ~0.3 s of calibration ran in the worker while the GUI thread kept ticking.
    assert len(ticks) >= 5, f"the event loop was blocked ({len(ticks)} timer ticks)"

    cli = subprocess.run(
        [sys.executable, "-m", "vmgui.host.cli", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    doc = json.loads(cli.stdout)
    assert status.verdict.value == doc["verdict"]
    assert page.headline.text() == status.headline
    assert_measured_page(page, status)
    first_word = page.headline.text().split()[0]
    assert doc["headline"].startswith(first_word)
    assert not page.grab().isNull()

    # "Check again" runs a fresh probe on the same loop and replaces the shown status.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        page._last_probe = ((), pool)
        qtbot.mouseClick(page.check_again, Qt.MouseButton.LeftButton)
        assert page._task is not None and not page.check_again.isEnabled()
        again = qt_loop.run_until_complete(page._task)
    assert again is not None and again is not status and page.status is again
    assert page.check_again.isEnabled()


def test_unavailable_status_shows_problem_fix_and_connections(qtbot: QtBot) -> None:
    cpu = HostCpu("GenuineIntel", "Core i7", 8, "vmx")
    kvm = KvmDevice(
        present=True,
        problem="permission denied opening /dev/kvm (owner group 'kvm', mode 0660)",
        fix="sudo usermod -aG kvm $USER, then log out and log in again",
    )
    conn = DomainCapabilities(
        "qemu:///session", "x86_64", "/usr/bin/qemu-system-x86_64", ("qemu",),
        ("pc", "q35"), ("bios",), 255,
    )  # fmt: skip
    j = judge(cpu, KvmModule("kvm_intel", nested=True), kvm, None, [conn])
    status = HostStatus(j.verdict, j.headline, j.reason, j.advice, cpu, KvmModule(), kvm, None,
                        (conn,))  # fmt: skip
    page = HostPage()
    qtbot.addWidget(page)
    seen: list[HostStatus] = []
    page.statusChanged.connect(seen.append)
    page.set_status(status)
    assert seen == [status] and status.verdict is Verdict.UNAVAILABLE
    assert page.headline.text().startswith("VMs cannot run here: permission denied")
    assert "#d93025" in page.banner.styleSheet()  # red banner
    assert page.section_titles()[-1] == "libvirt: qemu:///session"
    text = page.text()
    assert "sudo usermod -aG kvm $USER" in text and "qemu (TCG emulation)" in text
    assert "/dev/kvm is not usable" in text  # the speed section says why nothing was measured
    # A second status replaces the sections instead of piling them up.
    page.set_status(status)
    assert len(page.section_titles()) == 4
