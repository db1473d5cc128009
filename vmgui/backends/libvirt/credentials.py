"""What `openAuth` asks for, in a UI-free shape the GUI can turn into a dialog."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import libvirt

from vmgui.model.credentials import AskCredentials, CredentialPrompt

__all__ = [
    "SUPPORTED_CREDENTIALS",
    "AskCredentials",
    "CredentialPrompt",
    "CredentialsBridge",
    "prompts_for",
]

log = logging.getLogger(__name__)
CREDENTIALS_TIMEOUT_S = 300.0  # a person is typing a password

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


class CredentialsBridge:
    """openAuth's callback: runs on an executor thread, asks the UI on the loop, and waits.

    `loop` is set when the connection opens (the loop the UI's coroutine must run on).
    """

    def __init__(self, uri: str, ask: AskCredentials | None) -> None:
        self.uri = uri
        self.ask = ask
        self.loop: asyncio.AbstractEventLoop | None = None

    def answer_blocking(self, creds: list[list[Any]], _opaque: object) -> int:
        """Fill in each credential's result (index 4); 0 when answered, -1 when not."""
        ask, loop = self.ask, self.loop
        if ask is None or loop is None:
            return -1
        prompts = prompts_for(creds)

        async def ask_on_loop() -> list[str] | None:
            return await ask(self.uri, prompts)

        future = asyncio.run_coroutine_threadsafe(ask_on_loop(), loop)
        try:
            answers = future.result(timeout=CREDENTIALS_TIMEOUT_S)
        except Exception as exc:  # the dialog failed or timed out: the open fails, logged
            log.warning("asking for the credentials of %s failed: %r", self.uri, exc)
            future.cancel()
            return -1
        if answers is None or len(answers) != len(creds):
            return -1
        for cred, answer in zip(creds, answers, strict=True):
            cred[4] = answer
        return 0
