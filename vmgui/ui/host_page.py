"""The "This computer (built-in)" page: the host probe's verdict, evidence and advice.

API for the main window: `HostPage(parent)`, `.set_status(HostStatus)`, and
`.start_probe(backends, executor)` which runs the probe on the running asyncio (qasync) loop,
its blocking part in `executor`, and shows the result when it arrives -- the GUI never waits.
Each connection's capabilities are read through its backend's open connection.
Row texts come from vmgui.host.report, so the page and `vmgui host-check` say the same thing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from vmgui.backends.base import Backend, is_builtin
from vmgui.host import report
from vmgui.host.probe import probe_host_async
from vmgui.model.host import DomainCapabilities, HostStatus, Verdict
from vmgui.ui.errors import log_failure
from vmgui.ui.tasks import run_for

log = logging.getLogger(__name__)

#: Banner colours (background, border) and icons per verdict.
_LOOK: dict[Verdict, tuple[str, str, QStyle.StandardPixmap]] = {
    Verdict.HARDWARE_ASSISTED: ("#e6f4ea", "#34a853", QStyle.StandardPixmap.SP_DialogApplyButton),
    Verdict.EMULATED: ("#fef7e0", "#f9ab00", QStyle.StandardPixmap.SP_MessageBoxWarning),
    Verdict.UNKNOWN_SPEED: ("#e8f0fe", "#4285f4", QStyle.StandardPixmap.SP_MessageBoxQuestion),
    Verdict.UNAVAILABLE: ("#fce8e6", "#d93025", QStyle.StandardPixmap.SP_MessageBoxCritical),
}
_ICON_SIZE = 32


def _label(text: str = "", bold: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


class HostPage(QWidget):
    """Verdict banner on top, then one section per evidence source."""

    #: Emitted with the HostStatus each time a new one is shown.
    statusChanged = Signal(object)
    #: Emitted when the user asks to check again (the page also re-runs its last probe).
    refreshRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status: HostStatus | None = None
        self._task: asyncio.Task[HostStatus | None] | None = None
        self._last_probe: tuple[tuple[Backend, ...], concurrent.futures.Executor | None] = ((), None)

        self.banner = QFrame()
        self.banner.setObjectName("hostVerdictBanner")
        self.icon = QLabel()
        self.headline = _label("Checking this computer…", bold=True)
        self.headline.setObjectName("hostVerdictHeadline")
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.headline.setFont(font)
        self.reason = _label()
        self.reason.setObjectName("hostVerdictReason")
        self.advice = _label()
        self.advice.setObjectName("hostAdvice")
        self.advice.setTextFormat(Qt.TextFormat.RichText)
        self.check_again = QPushButton("Check again")
        self.check_again.clicked.connect(self._on_check_again)

        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addWidget(self.reason)
        text.addWidget(self.advice)
        banner = QHBoxLayout(self.banner)
        banner.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        banner.addLayout(text, 1)
        banner.addWidget(self.check_again, 0, Qt.AlignmentFlag.AlignTop)

        self.sections = QVBoxLayout()
        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(self.banner)
        column.addLayout(self.sections)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._paint_banner(Verdict.UNKNOWN_SPEED)

    # --- showing a status ---------------------------------------------------------------

    def set_status(self, status: HostStatus) -> None:
        """Show `status` (GUI thread only)."""
        self.status = status
        self._paint_banner(status.verdict)
        self.headline.setText(status.headline)
        self.reason.setText(status.reason)
        items = "".join(f"<li>{_escape(a)}</li>" for a in status.advice)
        self.advice.setText(f"<ul style='margin-left:-20px'>{items}</ul>" if items else "")
        self.advice.setVisible(bool(items))
        self._clear_sections()
        self._add_section("Processor", report.cpu_rows(status))
        self._add_section(f"KVM ({status.kvm.path})", report.kvm_rows(status))
        self._add_section("Measured guest speed", report.speed_rows(status))
        for conn in status.connections:
            self._add_section(f"libvirt: {conn.uri}", report.connection_rows(conn))
        self.statusChanged.emit(status)

    def show_error(self, message: str) -> None:
        """The probe itself failed (a bug or an unexpected OS error): say so, keep the rest."""
        self._paint_banner(Verdict.UNAVAILABLE)
        self.headline.setText("Could not check this computer")
        self.reason.setText(message)

    def section_titles(self) -> list[str]:
        return [box.title() for box in self._boxes()]

    def text(self) -> str:
        """Everything the page shows, as plain text (for tests and copy to clipboard)."""
        parts = [self.headline.text(), self.reason.text()]
        parts += [a for a in (self.status.advice if self.status else ())]
        for box in self._boxes():
            parts.append(box.title())
            parts += [lbl.text() for lbl in box.findChildren(QLabel)]
        return "\n".join(parts)

    def _boxes(self) -> list[QGroupBox]:
        items = (self.sections.itemAt(i) for i in range(self.sections.count()))
        return [w for item in items if item and isinstance(w := item.widget(), QGroupBox)]

    def _paint_banner(self, verdict: Verdict) -> None:
        background, border, icon = _LOOK[verdict]
        self.banner.setStyleSheet(
            f"#hostVerdictBanner {{ background: {background}; border: 2px solid {border};"
            " border-radius: 6px; } #hostVerdictBanner QLabel { color: #202124; }"
        )
        self.icon.setPixmap(self.style().standardIcon(icon).pixmap(_ICON_SIZE, _ICON_SIZE))

    def _clear_sections(self) -> None:
        while self.sections.count():
            item = self.sections.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.deleteLater()

    def _add_section(self, title: str, rows: list[tuple[str, str]]) -> None:
        box = QGroupBox(title)
        form = QFormLayout(box)
        for key, value in rows:
            form.addRow(_label(key, bold=True), _label(value))
        self.sections.addWidget(box)

    # --- probing ------------------------------------------------------------------------

    def start_probe(
        self,
        backends: Sequence[Backend] = (),
        executor: concurrent.futures.Executor | None = None,
    ) -> asyncio.Task[HostStatus | None]:
        """Schedule the probe on the (qasync) event loop; the page updates when it finishes.

        Works before the loop runs too (e.g. from the window's constructor): the task starts
        with the loop. A probe already under way is returned instead of starting another.
        """
        if self._task is not None and not self._task.done():
            return self._task
        # The built-in VMM is what the page itself describes; only other hosts are queried.
        backends = tuple(b for b in backends if not is_builtin(b.uri))
        self._last_probe = (backends, executor)
        self.check_again.setEnabled(False)  # at once, so a double click cannot queue two
        self._task = run_for(self, self.probe(backends, executor), "check this computer")
        return self._task

    async def probe(
        self,
        backends: Sequence[Backend] = (),
        executor: concurrent.futures.Executor | None = None,
    ) -> HostStatus | None:
        """Probe (blocking parts in `executor`) and show the result; None if it failed."""
        self.check_again.setEnabled(False)
        self.headline.setText("Checking this computer…")
        try:
            by_uri = {b.uri: b for b in backends}

            async def fetch(uri: str) -> DomainCapabilities:
                return await by_uri[uri].domain_capabilities()

            status = await probe_host_async(connections=list(by_uri), fetch=fetch,
                                            executor=executor)
        except Exception as e:  # shown, not raised: a failed probe must not break the window
            sentence = f"{type(e).__name__}: {e}"
            log_failure(log, f"The host check failed: {sentence}", e)
            if shiboken6.isValid(self):
                self.check_again.setEnabled(True)
                self.show_error(sentence)
            return None
        if not shiboken6.isValid(self):
            return status  # the page was closed while the probe ran
        self.check_again.setEnabled(True)
        self.set_status(status)
        return status

    def _on_check_again(self) -> None:
        self.refreshRequested.emit()
        self.start_probe(*self._last_probe)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
