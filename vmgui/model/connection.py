"""Connection state shared by backends and UI."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class ConnectionStatus:
    """A connection's state plus the sentence the status bar shows (empty when all is well)."""

    uri: str
    state: ConnectionState
    message: str = ""
