"""VNC authentication (RFB security type 2): DES-encrypt the server's 16-byte challenge.

The key is the password's first 8 bytes (zero-padded) with the bits of every byte reversed,
a quirk of the original VNC implementation. DES comes from pycryptodome, never hand-written.
"""

from __future__ import annotations

from Crypto.Cipher import DES

CHALLENGE_BYTES = 16
KEY_BYTES = 8


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def vnc_key(password: str) -> bytes:
    raw = password.encode("latin-1", "replace")[:KEY_BYTES].ljust(KEY_BYTES, b"\0")
    return bytes(_reverse_bits(b) for b in raw)


def vnc_response(challenge: bytes, password: str) -> bytes:
    """The 16 bytes the client answers the server's challenge with."""
    if len(challenge) != CHALLENGE_BYTES:
        raise ValueError("a VNC challenge is 16 bytes")
    return DES.new(vnc_key(password), DES.MODE_ECB).encrypt(challenge)
