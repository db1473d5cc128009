"""The firmware debug port (0x402): presence byte and line assembly."""

from __future__ import annotations

from vmgui.vmm.firmware.legacy_ports import DEBUG_PORT_PRESENT, MAX_LINE, DebugPort


def test_reads_announce_the_port_and_bytes_become_lines() -> None:
    lines: list[str] = []
    port = DebugPort(lines.append)
    assert port.read(0, 1) == DEBUG_PORT_PRESENT == 0xE9
    for b in b"SeaBIOS\r\nNo bootable device\npartial":
        port.write(0, 1, b)
    assert lines == ["SeaBIOS", "No bootable device"]
    port.write(0, 2, int.from_bytes(b"!\n", "little"))  # wider writes are bytes in order
    assert lines[-1] == "partial!"


def test_a_line_without_end_is_cut_at_the_limit() -> None:
    lines: list[str] = []
    port = DebugPort(lines.append)
    for _ in range(MAX_LINE + 3):
        port.write(0, 1, ord("x"))
    assert lines == ["x" * MAX_LINE]


def test_reset_control_resets_on_the_cpu_reset_bit_only() -> None:
    from vmgui.vmm.firmware.legacy_ports import ResetControl

    resets: list[int] = []
    rcr = ResetControl(lambda: resets.append(1))
    rcr.write(0, 1, 0x02)  # SeaBIOS: hard reset selected...
    assert resets == [] and rcr.read(0, 1) == 0x02
    rcr.write(0, 1, 0x06)  # ...then reset CPU
    assert resets == [1]
