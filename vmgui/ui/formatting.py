"""Human-readable figures shared by the list, the details view and the graphs."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """Binary units, one decimal once above KiB (what virt-manager and GNOME show)."""
    value = float(max(0.0, n))
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_kib(kib: int) -> str:
    return format_bytes(kib * 1024)


def format_rate(bps: float) -> str:
    return format_bytes(bps) + "/s"


def format_percent(p: float) -> str:
    return f"{p:.0f} %"
