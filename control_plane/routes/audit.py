"""``/api/v1/audit-log``: who did what, when, through which request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from control_plane import render
from control_plane.deps import Audit, ReaderKey
from control_plane.endpoints import Cursor, Limit, resource_router
from control_plane.pagination import decode_cursor, split_page
from schemas.api import AuditEntryPublic, Page

router = resource_router("/audit-log", tag="audit")

_Text = Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")


@router.get("", summary="List audit entries (cursor pages, newest first)")
async def list_audit_log(
    _key: ReaderKey,
    audit: Audit,
    actor: Annotated[str | None, _Text] = None,
    action: Annotated[str | None, _Text] = None,
    target: Annotated[str | None, _Text] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AuditEntryPublic]:
    before = decode_cursor(cursor, "audit", int)
    rows = await audit.list(
        actor=actor,
        action=action,
        target=target,
        before_id=before[0] if before else None,
        limit=limit + 1,
    )
    page, next_cursor = split_page(rows, limit=limit, listing="audit", key=lambda r: (r["id"],))
    return Page(items=[render.audit_entry(row) for row in page], next_cursor=next_cursor)
