"""Credentials a connection asks for while it opens (libvirt's openAuth, later ssh, ...).

The backend turns the hypervisor's questions into `CredentialPrompt`s and awaits an
`AskCredentials` callback (the GUI's dialog); the answers go back in the same order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CredentialPrompt:
    """One question: `kind` is "username", "password", "answer" or "secret"."""

    kind: str
    prompt: str
    default: str = ""
    secret: bool = False


#: ask_credentials(uri, prompts) -> one answer per prompt, or None when the user cancelled.
AskCredentials = Callable[[str, list[CredentialPrompt]], Awaitable[list[str] | None]]
