"""``/api/v1/events``: the owner-notice outbox; a failed event can be retried once its cause is
fixed (owners already told are not told again)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request, status

from control_plane.deps import AdminKey, ReaderKey, RequestId
from control_plane.endpoints import Cursor, Limit, resource_router
from control_plane.idempotency import Idempotent
from control_plane.pagination import decode_cursor, split_page
from control_plane.problems import problem_responses
from control_plane.services.events import EventAdminService, public_event
from fleet.identifiers import SLUG_PATTERN
from schemas.api import EVENT_KIND_PATTERN, EventPublic, EventState, Page

router = resource_router("/events", tag="events")

EventId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[314])]


async def get_events(request: Request) -> EventAdminService:
    """One service per app, made on first use (it needs only the pool)."""
    service: EventAdminService | None = getattr(request.app.state, "events", None)
    if service is None:
        service = request.app.state.events = EventAdminService(pool=request.app.state.pool)
    return service


Events = Annotated[EventAdminService, Depends(get_events)]


@router.get("", summary="List outbox events (cursor pages, newest first)")
async def list_events(
    _key: ReaderKey,
    events: Events,
    state: Annotated[EventState | None, Query(description="failed, pending or delivered")] = None,
    tenant: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="Tenant slug")] = None,
    kind: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=EVENT_KIND_PATTERN,
            description="Event kind, e.g. `tenant.suspended`",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[EventPublic]:
    before = decode_cursor(cursor, "events", int)
    rows = await events.list(
        state=state,
        kind=kind,
        tenant=tenant,
        before_id=before[0] if before else None,
        limit=limit + 1,
    )
    page, next_cursor = split_page(rows, limit=limit, listing="events", key=lambda r: (r["id"],))
    return Page(items=[public_event(row) for row in page], next_cursor=next_cursor)


@router.get("/{event_id}", summary="Show an outbox event", responses=problem_responses(404))
async def get_event(_key: ReaderKey, event_id: EventId, events: Events) -> EventPublic:
    return public_event(await events.get(event_id))


@router.post(
    "/{event_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Deliver a failed event again (owners already told are skipped)",
    responses=problem_responses(404, 409),
)
async def retry_event(
    key: AdminKey, _idempotent: Idempotent, event_id: EventId, events: Events, request_id: RequestId
) -> EventPublic:
    return public_event(await events.retry(event_id, actor=key.actor, request_id=request_id))
