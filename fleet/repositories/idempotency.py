"""SQL over ``control.idempotency_keys``: stored answers to POST requests sent with an
``Idempotency-Key``."""

from __future__ import annotations

from typing import Any

import asyncpg

from fleet.db import Executor


class IdempotencyRepository:
    """Claims keys under a lease, stores answers, replays them."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def claim(
        self,
        *,
        api_key_id: int,
        key: str,
        request_hash: str,
        method: str,
        path: str,
        lease_s: float,
        ttl_s: float,
    ) -> asyncpg.Record | None:
        """Take the key for this request: insert it, or take over an expired one or a stale
        claim of the same request. None when another row holds it (read it with :meth:`get`)."""
        return await self._db.fetchrow(
            "INSERT INTO control.idempotency_keys AS k"
            " (api_key_id, key, request_hash, method, path, locked_until, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6),"
            "         now() + make_interval(secs => $7))"
            " ON CONFLICT (api_key_id, key) DO UPDATE SET"
            "  request_hash = EXCLUDED.request_hash, method = EXCLUDED.method,"
            "  path = EXCLUDED.path, status = 'running', locked_until = EXCLUDED.locked_until,"
            "  response_status = NULL, response_headers = '{}', response_body = NULL,"
            "  created_at = now(), expires_at = EXCLUDED.expires_at"
            " WHERE k.expires_at < now()"
            "  OR (k.status = 'running' AND k.locked_until < now()"
            "      AND k.request_hash = EXCLUDED.request_hash)"
            " RETURNING *",
            api_key_id,
            key,
            request_hash,
            method,
            path,
            float(lease_s),
            float(ttl_s),
        )

    async def get(self, *, api_key_id: int, key: str) -> asyncpg.Record | None:
        return await self._db.fetchrow(
            "SELECT * FROM control.idempotency_keys WHERE api_key_id = $1 AND key = $2",
            api_key_id,
            key,
        )

    async def complete(
        self,
        *,
        api_key_id: int,
        key: str,
        status: int,
        headers: dict[str, Any],
        body: bytes,
    ) -> None:
        await self._db.execute(
            "UPDATE control.idempotency_keys SET status = 'done', response_status = $3,"
            " response_headers = $4, response_body = $5"
            " WHERE api_key_id = $1 AND key = $2 AND status = 'running'",
            api_key_id,
            key,
            status,
            headers,
            body,
        )

    async def release(self, *, api_key_id: int, key: str) -> None:
        """Forget a claim whose request failed on our side, so a retry runs it again."""
        await self._db.execute(
            "DELETE FROM control.idempotency_keys"
            " WHERE api_key_id = $1 AND key = $2 AND status = 'running'",
            api_key_id,
            key,
        )

    async def purge_expired(self, *, limit: int = 1000) -> int:
        status = await self._db.execute(
            "DELETE FROM control.idempotency_keys WHERE ctid = ANY(ARRAY("
            " SELECT ctid FROM control.idempotency_keys WHERE expires_at < now() LIMIT $1))",
            limit,
        )
        return int(status.split()[-1])
