"""What `openAuth` asks for, in a UI-free shape the GUI can turn into a dialog."""

from __future__ import annotations

import libvirt

from vmgui.model.credentials import AskCredentials, CredentialPrompt

__all__ = ["SUPPORTED_CREDENTIALS", "AskCredentials", "CredentialPrompt", "prompts_for"]

# libvirt credential types we can answer, and whether the answer must be hidden while typed
SUPPORTED_CREDENTIALS = {
    libvirt.VIR_CRED_USERNAME: ("username", False),
    libvirt.VIR_CRED_AUTHNAME: ("username", False),
    libvirt.VIR_CRED_PASSPHRASE: ("password", True),
    libvirt.VIR_CRED_ECHOPROMPT: ("answer", False),
    libvirt.VIR_CRED_NOECHOPROMPT: ("secret", True),
}


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
