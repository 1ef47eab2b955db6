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

from cryptography.fernet import Fernet

from fleet.errors import SecretError
from kit.secrets import SecretBox as KitBox
from kit.secrets import SecretUnreadable


def generate_master_key() -> str:
    """A new random master key (Fernet: 32 random bytes, URL-safe base64)."""
    return Fernet.generate_key().decode()


def generate_password(length: int = 32) -> str:
    """A random password of URL-safe characters (safe inside URLs and SQL literals)."""
    return secrets.token_urlsafe(length)[:length]


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
    """The platform's box: encrypts with the first master key, decrypts with whichever key id a
    ciphertext names (the mechanism is :class:`kit.secrets.SecretBox`; errors are ``SecretError``)."""

    PREFIX = KitBox.PREFIX

    def __init__(self, master_keys: str) -> None:
        try:
            keys = parse_master_keys(master_keys)
        except ValueError as exc:
            raise SecretError(f"BOTFLEET_MASTER_KEY {exc}") from None
        self._box = KitBox(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._box.encrypt(plaintext)

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._box.decrypt(ciphertext)
        except SecretUnreadable as exc:
            message = str(exc)
            if "which is not held" in message:
                kid = message.split("key ", 1)[1].split(",", 1)[0]
                message = (
                    f"stored secret was encrypted with master key {kid}, which is not configured; "
                    "add it to BOTFLEET_MASTER_KEY (comma-separated, after the current key)"
                )
            else:
                message = message.replace("with key", "with master key")
            raise SecretError(message) from None

    def needs_rotation(self, ciphertext: str) -> bool:
        return self._box.needs_rotation(ciphertext)


def fingerprint(value: str) -> str:
    """A stable, non-reversible fingerprint of a high-entropy secret (a bot token) for uniqueness."""
    return hashlib.sha256(value.encode()).hexdigest()


def mask_token(token: str) -> str:
    """``123456:AB…yz`` — enough to recognise a bot token, never enough to use it."""
    bot_id, _, rest = token.partition(":")
    if not rest:
        return "…"
    return f"{bot_id}:{rest[:2]}…{rest[-2:]}" if len(rest) > 6 else f"{bot_id}:…"
