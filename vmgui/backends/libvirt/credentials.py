"""What `openAuth` asks for, in a UI-free shape the GUI can turn into a dialog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import libvirt

# libvirt credential types we can answer, and whether the answer must be hidden while typed
SUPPORTED_CREDENTIALS = {
    libvirt.VIR_CRED_USERNAME: ("username", False),
    libvirt.VIR_CRED_AUTHNAME: ("username", False),
    libvirt.VIR_CRED_PASSPHRASE: ("password", True),
    libvirt.VIR_CRED_ECHOPROMPT: ("answer", False),
    libvirt.VIR_CRED_NOECHOPROMPT: ("secret", True),
}


@dataclass(frozen=True)
class CredentialPrompt:
    """One question: `kind` is "username", "password", "answer" or "secret"."""

    kind: str
    prompt: str
    default: str = ""
    secret: bool = False


# ask_credentials(uri, prompts) -> one answer per prompt, or None when the user cancelled
AskCredentials = Callable[[str, list[CredentialPrompt]], Awaitable[list[str] | None]]


def prompts_for(creds: list[list[object]]) -> list[CredentialPrompt]:
    """libvirt's [type, prompt, challenge, default, result] lists -> CredentialPrompts."""
    prompts = []
    for cred in creds:
        kind, secret = SUPPORTED_CREDENTIALS.get(int(str(cred[0])), ("answer", False))
        prompts.append(
            CredentialPrompt(
                kind=kind,
                prompt=str(cred[1] or kind.capitalize()),
                default=str(cred[3] or ""),
                secret=secret,
            )
        )
    return prompts
