"""SQL over ``control.api_keys``. Only hashes of keys are ever stored or looked up."""

from __future__ import annotations

import asyncpg

from fleet.db import Executor


class ApiKeyRepository:
    """Reads and writes API key rows."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def insert(
        self, *, name: str, key_hash: str, key_prefix: str, scopes: list[str]
    ) -> asyncpg.Record:
        row = await self._db.fetchrow(
            "INSERT INTO control.api_keys (name, key_hash, key_prefix, scopes)"
            " VALUES ($1, $2, $3, $4) RETURNING *",
            name,
            key_hash,
            key_prefix,
            scopes,
        )
        assert row is not None
        return row

    async def find_active(self, key_hash: str) -> asyncpg.Record | None:
        """The unrevoked key with this hash, or None."""
        return await self._db.fetchrow(
            "SELECT * FROM control.api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
        )

    async def get(self, key_id: int) -> asyncpg.Record | None:
        return await self._db.fetchrow("SELECT * FROM control.api_keys WHERE id = $1", key_id)

    async def list(self, *, include_revoked: bool = False) -> list[asyncpg.Record]:
        return await self._db.fetch(
            "SELECT * FROM control.api_keys WHERE $1 OR revoked_at IS NULL ORDER BY id",
            include_revoked,
        )

    async def revoke(self, key_id: int) -> asyncpg.Record | None:
        """Revoke a key (idempotent: a revoked key keeps its first revocation time)."""
        return await self._db.fetchrow(
            "UPDATE control.api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = $1 RETURNING *",
            key_id,
        )

    async def touch(self, key_id: int, *, min_interval_s: float) -> None:
        """Record use, at most once per ``min_interval_s``, so busy keys do not write per request."""
        await self._db.execute(
            "UPDATE control.api_keys SET last_used_at = now() WHERE id = $1"
            " AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))",
            key_id,
            float(min_interval_s),
        )
