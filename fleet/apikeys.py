"""API keys of the control plane: created once, shown once, stored only as SHA-256 hashes.

A key looks like ``bfk_<43 URL-safe characters>`` (256 random bits). Its first 12 characters are kept as
``key_prefix`` so an operator can tell keys apart in listings without the key itself. Scopes:

- ``admin`` — everything;
- ``read`` — every read of the admin API;
- ``sales`` — what the sales bot needs (plans, creating and following its own purchases, payments).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

import asyncpg

from fleet.errors import NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.api_keys import ApiKeyRepository

log = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = ("admin", "read", "sales")
KEY_PREFIX = "bfk_"
_SHOWN_PREFIX_LENGTH = 12


def hash_key(key: str) -> str:
    """The SHA-256 (hex) under which a key is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    """A new random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiKey:
    """An API key as the platform knows it: never the key itself."""

    id: int
    name: str
    key_prefix: str
    scopes: tuple[str, ...]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ApiKey:
        return cls(
            id=row["id"],
            name=row["name"],
            key_prefix=row["key_prefix"],
            scopes=tuple(row["scopes"]),
        )

    @property
    def actor(self) -> str:
        """How audit entries name this key: ``apikey:<id>`` plus its name when it has one."""
        return f"apikey:{self.id}" + (f"/{self.name}" if self.name else "")


@dataclass(frozen=True)
class CreatedApiKey:
    """A key just created: ``key`` is its only appearance in plain text."""

    record: asyncpg.Record
    key: str


class ApiKeyService:
    """Creates, lists, revokes and verifies API keys."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, *, scopes: list[str], name: str = "", actor: str) -> CreatedApiKey:
        """Create a key with ``scopes``; the returned plain key is never stored."""
        wanted = list(dict.fromkeys(scopes))
        if not wanted:
            raise ValidationError("scope", f"give at least one scope: {', '.join(SCOPES)}")
        unknown = [s for s in wanted if s not in SCOPES]
        if unknown:
            raise ValidationError(
                "scope", f"unknown scope {unknown[0]!r}; use one of {', '.join(SCOPES)}"
            )
        name = name.strip()
        if len(name) > 100:
            raise ValidationError("name", "must be at most 100 characters")
        key = generate_key()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await ApiKeyRepository(conn).insert(
                name=name,
                key_hash=hash_key(key),
                key_prefix=key[:_SHOWN_PREFIX_LENGTH],
                scopes=wanted,
            )
            await audit.record(
                conn,
                actor=actor,
                action="api_key.create",
                target=f"apikey:{row['id']}",
                details={"name": name, "scopes": wanted},
            )
        log.info("api key created", extra={"api_key_id": row["id"], "scopes": wanted})
        return CreatedApiKey(record=row, key=key)

    async def revoke(self, key_id: int, *, actor: str) -> asyncpg.Record:
        """Revoke a key; revoking twice is harmless."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await ApiKeyRepository(conn).revoke(key_id)
            if row is None:
                raise NotFoundError(f"API key {key_id} does not exist; list keys to find its id")
            await audit.record(
                conn, actor=actor, action="api_key.revoke", target=f"apikey:{key_id}"
            )
        log.info("api key revoked", extra={"api_key_id": key_id})
        return row

    async def list(self, *, include_revoked: bool = False) -> list[asyncpg.Record]:
        return await ApiKeyRepository(self._pool).list(include_revoked=include_revoked)

    async def verify(self, key: str, *, touch_interval_s: float = 60.0) -> ApiKey | None:
        """The active key matching ``key``, or None. Records its use (throttled)."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        repo = ApiKeyRepository(self._pool)
        row = await repo.find_active(hash_key(key))
        if row is None:
            return None
        await repo.touch(row["id"], min_interval_s=touch_interval_s)
        return ApiKey.from_row(row)
