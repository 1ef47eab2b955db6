"""Secrets at rest, one mechanism for the platform and the tenant bots.

Ciphertexts look like ``v1:<key id>:<fernet token>``: the key id (the first 8 hex digits of the
SHA-256 of the key) names the key that encrypted a value, so keys rotate (encrypt with the first,
decrypt with any). The platform's box holds its master keys (``fleet.secrets.SecretBox``); a tenant
bot's holds a key derived from its own bot token (:func:`derived_key`), which its database never
sees, for the payment provider token its owner pastes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(ValueError):
    """A ciphertext is malformed, names a key not held, or does not decrypt."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def derived_key(secret: str, *, purpose: str) -> str:
    """A Fernet key derived from a high-entropy ``secret`` (HKDF-SHA256), one per ``purpose``."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"botfleet", info=purpose.encode()
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(raw).decode()


class SecretBox:
    """Encrypts with the first key, decrypts with whichever key id a ciphertext names."""

    PREFIX = "v1"

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._current = keys[0]
        self._fernets = {key_id(key): Fernet(key.encode()) for key in keys}

    def encrypt(self, plaintext: str) -> str:
        kid = key_id(self._current)
        token = self._fernets[kid].encrypt(plaintext.encode()).decode()
        return f"{self.PREFIX}:{kid}:{token}"

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext; :class:`SecretUnreadable` saying why not (never the secret)."""
        try:
            version, kid, token = ciphertext.split(":", 2)
        except ValueError:
            raise SecretUnreadable("stored secret is malformed") from None
        if version != self.PREFIX:
            raise SecretUnreadable(f"stored secret has unknown format {version!r}")
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise SecretUnreadable(f"stored secret was encrypted with key {kid}, which is not held")
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(f"stored secret does not decrypt with key {kid}") from None

    def needs_rotation(self, ciphertext: str) -> bool:
        return ciphertext.split(":", 2)[1:2] != [key_id(self._current)]
