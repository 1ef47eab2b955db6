"""The owner-notice outbox as operators see it: listing events (failed ones above all), one event,
and putting a failed event back for delivery once its cause is fixed. Used by the REST API and the
``botfleet events`` CLI alike, so both audit a retry the same way."""

from __future__ import annotations

from typing import Any

import asyncpg

from control_plane.render import REDACTED, redact
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.logs import mask
from fleet.repositories import audit
from fleet.repositories import events as repo
from fleet.repositories.tenants import TenantRepository
from schemas.api import EventPublic

# Who the owners are stays in the tenant; an event shows only how many were told.
_PRIVATE_KEYS = frozenset(
    {"owner_telegram_ids", "owner_telegram_id", "telegram_id", "telegram_ids", "chat_id", "sent_to"}
)


def _private_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in _PRIVATE_KEYS else _private_dropped(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_private_dropped(item) for item in value]
    return value


def public_event(row: Any) -> EventPublic:
    """An event row as the API and the CLI show it: secret-looking and owner-identifying payload
    keys redacted, the error masked like the logs, recipients as a count."""
    return EventPublic(
        id=row["id"],
        kind=row["kind"],
        tenant=row["tenant_slug"],
        state=row["state"],
        payload=redact(_private_dropped(row["payload"] or {})),
        attempts=row["attempts"],
        last_error=mask(row["last_error"]) if row["last_error"] is not None else None,
        recipients_told=len(row["sent_to"] or ()),
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        failed_at=row["failed_at"],
    )


class EventAdminService:
    """Reads outbox events with their tenant's slug; retries failed ones (audited)."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def tenant_id(self, slug: str) -> int | None:
        """The id of the tenant that has (or last had) ``slug``: a deleted tenant's events stay
        listable under its slug."""
        return await TenantRepository(self._pool).id_of(slug)

    async def list(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        tenant: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        """Newest first; an unknown tenant has no events."""
        if state is not None and state not in repo.EVENT_STATES:
            raise ValidationError("state", f"use one of {', '.join(repo.EVENT_STATES)}")
        tenant_id = None
        if tenant is not None:
            tenant_id = await self.tenant_id(tenant)
            if tenant_id is None:
                return []
        return await repo.list_events(
            self._pool,
            state=state,
            tenant_id=tenant_id,
            kind=kind,
            limit=limit,
            before_id=before_id,
        )

    async def get(self, event_id: int) -> asyncpg.Record:
        row = await repo.get_event(self._pool, event_id)
        if row is None:
            raise NotFoundError(f"event {event_id} does not exist")
        return row

    async def retry(self, event_id: int, *, actor: str, request_id: str | None) -> asyncpg.Record:
        """Deliver a failed event again (owners already told are skipped); any other state is a
        conflict. The retry and its audit entry commit together."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await repo.retry_event(conn, event_id)
            if row is None:
                current = await repo.get_event(conn, event_id)
                if current is None:
                    raise NotFoundError(f"event {event_id} does not exist")
                raise ConflictError(
                    "state",
                    f"event {event_id} is {current['state']}; only failed events are retried",
                )
            await audit.record(
                conn,
                actor=actor,
                action="event.retry",
                target=f"event:{event_id}",
                details={"kind": row["kind"], "tenant": row["tenant_slug"]},
                request_id=request_id,
            )
        return row
