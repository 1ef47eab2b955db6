"""Secrets at rest: bot tokens and tenant passwords, encrypted with the master key.

Ciphertexts look like ``v1:<key id>:<fernet token>``. The key id (the first 8 hex digits of the
SHA-256 of the key) says which master key encrypted a value, so keys can rotate: configure
``BOTFLEET_MASTER_KEY=new,old`` and every value stays readable while ``new`` encrypts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

from fleet.errors import SecretError


def generate_master_key() -> str:
    """A new random master key (Fernet: 32 random bytes, URL-safe base64)."""
    return Fernet.generate_key().decode()


def generate_password(length: int = 32) -> str:
    """A random password of URL-safe characters (safe inside URLs and SQL literals)."""
    return secrets.token_urlsafe(length)[:length]


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_master_keys(raw: str) -> list[str]:
    """Split and check a comma-separated list of master keys; raise ValueError saying what is wrong."""
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        raise ValueError("is empty; generate one with `botfleet keygen`")
    for position, key in enumerate(keys, start=1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != 32:
            raise ValueError(
                f"key #{position} is not a valid key: expected 44 characters of URL-safe base64 "
                "encoding 32 bytes; generate one with `botfleet keygen`"
            )
    return keys


class SecretBox:
    """Encrypts with the first master key, decrypts with whichever key id a ciphertext names."""

    PREFIX = "v1"

    def __init__(self, master_keys: str) -> None:
        try:
            keys = parse_master_keys(master_keys)
        except ValueError as exc:
            raise SecretError(f"BOTFLEET_MASTER_KEY {exc}") from None
        self._current = keys[0]
        self._fernets = {key_id(key): Fernet(key.encode()) for key in keys}

    def encrypt(self, plaintext: str) -> str:
        kid = key_id(self._current)
        token = self._fernets[kid].encrypt(plaintext.encode()).decode()
        return f"{self.PREFIX}:{kid}:{token}"

    def decrypt(self, ciphertext: str) -> str:
        try:
            version, kid, token = ciphertext.split(":", 2)
        except ValueError:
            raise SecretError("stored secret is malformed") from None
        if version != self.PREFIX:
            raise SecretError(f"stored secret has unknown format {version!r}")
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise SecretError(
                f"stored secret was encrypted with master key {kid}, which is not configured; "
                "add it to BOTFLEET_MASTER_KEY (comma-separated, after the current key)"
            )
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError(f"stored secret does not decrypt with master key {kid}") from None

    def needs_rotation(self, ciphertext: str) -> bool:
        return ciphertext.split(":", 2)[1:2] != [key_id(self._current)]


def fingerprint(value: str) -> str:
    """A stable, non-reversible fingerprint of a high-entropy secret (a bot token) for uniqueness."""
    return hashlib.sha256(value.encode()).hexdigest()


def mask_token(token: str) -> str:
    """``123456:AB…yz`` — enough to recognise a bot token, never enough to use it."""
    bot_id, _, rest = token.partition(":")
    if not rest:
        return "…"
    return f"{bot_id}:{rest[:2]}…{rest[-2:]}" if len(rest) > 6 else f"{bot_id}:…"
