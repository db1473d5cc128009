"""User preferences, persisted as one JSON file in the XDG config dir.

Every reader and writer goes through `load_settings`/`save_settings` (one accessor), so the file
format lives in one place. Writes are atomic (temp file + fsync + rename): a crash mid-write leaves
the previous file intact, never a truncated one. Unknown or malformed values fall back to defaults
instead of stopping the app.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from vmgui.atomic_file import write_atomically

APP_NAME = "vmgui"
MIN_STATS_INTERVAL_S = 1
MAX_STATS_INTERVAL_S = 10
DEFAULT_STATS_INTERVAL_S = 2
ALL_COLUMNS = ("name", "state", "cpu", "memory", "host", "connection")
MAX_GEOMETRY_HEX = 4096  # Qt's saved geometry is ~66 bytes; anything far larger is not one


@dataclass
class Settings:
    connections: list[str] = field(default_factory=list)
    stats_interval_s: int = DEFAULT_STATS_INTERVAL_S
    visible_columns: list[str] = field(default_factory=lambda: list(ALL_COLUMNS))
    #: The first start looked for this computer's libvirt (once: a removed connection stays gone).
    local_libvirt_checked: bool = False
    #: Ask before Force Off and Force Reset (their dialogs' "Don't ask again" clears it).
    confirm_force_off: bool = True
    #: The main window as it was closed: Qt's saveGeometry() as hex, splitter sizes by name,
    #: and the list's sort column (a key of ALL_COLUMNS) and order.
    window_geometry: str = ""
    splitter_sizes: dict[str, list[int]] = field(default_factory=dict)
    sort_column: str = "name"
    sort_descending: bool = False


def config_path() -> Path:
    """Resolved at call time so tests (and users) can point XDG_CONFIG_HOME elsewhere."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "settings.json"


def _clean(raw: dict[str, Any]) -> Settings:
    s = Settings()
    conns = raw.get("connections")
    if isinstance(conns, list):
        s.connections = list(dict.fromkeys(c for c in conns if isinstance(c, str) and c))
    interval = raw.get("stats_interval_s")
    if isinstance(interval, int) and not isinstance(interval, bool):
        s.stats_interval_s = min(MAX_STATS_INTERVAL_S, max(MIN_STATS_INTERVAL_S, interval))
    cols = raw.get("visible_columns")
    if isinstance(cols, list):
        picked = [c for c in ALL_COLUMNS if c in cols]
        # The name column identifies a row; hiding it would make the list meaningless.
        s.visible_columns = picked if "name" in picked else ["name", *picked]
    for flag in ("local_libvirt_checked", "confirm_force_off", "sort_descending"):
        if isinstance(raw.get(flag), bool):
            setattr(s, flag, raw[flag])
    geometry = raw.get("window_geometry")
    if isinstance(geometry, str) and len(geometry) <= MAX_GEOMETRY_HEX and _is_hex(geometry):
        s.window_geometry = geometry
    sizes = raw.get("splitter_sizes")
    if isinstance(sizes, dict):
        s.splitter_sizes = {
            name: [int(v) for v in values]
            for name, values in sizes.items()
            if isinstance(name, str) and isinstance(values, list) and 0 < len(values) <= 8
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 100_000
                    for v in values)
        }
    if raw.get("sort_column") in ALL_COLUMNS:
        s.sort_column = raw["sort_column"]
    return s


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def load_settings(path: Path | None = None) -> Settings:
    path = path or config_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    return _clean(raw) if isinstance(raw, dict) else Settings()


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Atomic replace; raises OSError (with the path in it) when the dir is not writable."""
    path = path or config_path()
    data = json.dumps(asdict(settings), indent=2) + "\n"
    write_atomically(path, data.encode("utf-8"))
