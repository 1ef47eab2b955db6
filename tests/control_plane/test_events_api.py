"""``/api/v1/events``: the owner-notice outbox for operators (issue 13). Failed events are listed,
shown and retried (admin only, audited); a retry keeps the recipients already told; nothing shows
who the owners are or a secret. Events are set up with SQL, as a deliverer would have left them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.support.api_support import client_for, make_token, tenant_body

OWNER = 918273645


async def _tenant(admin: httpx.AsyncClient, slug: str) -> None:
    response = await admin.post(
        "/api/v1/tenants", json=tenant_body(slug, owner_telegram_ids=[OWNER, OWNER + 1])
    )
    assert response.status_code == 202, response.text


async def _tenant_id(pool: asyncpg.Pool, slug: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT id FROM control.tenants WHERE slug = $1 AND deleted_at IS NULL", slug
        )
    )


async def _event(
    pool: asyncpg.Pool,
    tenant_id: int | None,
    kind: str,
    *,
    state: str,
    payload: dict[str, Any] | None = None,
    sent_to: list[int] | None = None,
    last_error: str | None = None,
    attempts: int = 0,
) -> int:
    now = datetime.now(UTC)
    event_id = await pool.fetchval(
        "INSERT INTO control.events (tenant_id, kind, payload, attempts, last_error, sent_to,"
        " delivered_at, failed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        tenant_id,
        kind,
        payload or {},
        attempts,
        last_error,
        sent_to or [],
        now if state == "delivered" else None,
        now if state == "failed" else None,
    )
    return int(event_id)


async def test_failed_events_are_listed_shown_and_retried(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    tenant_id = await _tenant_id(pool, slug)
    token = make_token()
    delivered = await _event(pool, tenant_id, "tenant.live", state="delivered", sent_to=[OWNER])
    pending = await _event(pool, tenant_id, "payment.succeeded", state="pending")
    failed = await _event(
        pool,
        tenant_id,
        "tenant.suspended",
        state="failed",
        payload={"previous_status": "active", "owner_telegram_ids": [OWNER], "bot_token": token},
        sent_to=[OWNER],
        attempts=1,
        last_error=f"template event_tenant_suspended: 'delete_at' is undefined ({token})",
    )

    everything = (await admin.get("/api/v1/events", params={"tenant": slug})).json()
    assert [(e["id"], e["state"]) for e in everything["items"]] == [
        (failed, "failed"),
        (pending, "pending"),
        (delivered, "delivered"),
    ]
    assert everything["next_cursor"] is None
    for state, expected in (("failed", failed), ("pending", pending), ("delivered", delivered)):
        page = await admin.get("/api/v1/events", params={"tenant": slug, "state": state})
        assert [e["id"] for e in page.json()["items"]] == [expected], state
    all_failed = await admin.get("/api/v1/events", params={"state": "failed", "limit": 200})
    assert failed in {e["id"] for e in all_failed.json()["items"]}
    assert pending not in {e["id"] for e in all_failed.json()["items"]}
    by_kind = await admin.get("/api/v1/events", params={"tenant": slug, "kind": "tenant.live"})
    assert [e["id"] for e in by_kind.json()["items"]] == [delivered]

    shown = await admin.get(f"/api/v1/events/{failed}")
    assert shown.status_code == 200
    event = shown.json()
    assert event["kind"] == "tenant.suspended" and event["tenant"] == slug
    assert event["state"] == "failed" and event["failed_at"] and event["attempts"] == 1
    assert "delete_at" in event["last_error"]
    assert event["recipients_told"] == 1
    assert event["payload"]["previous_status"] == "active"
    assert event["payload"]["bot_token"] == "***"
    # neither the owners' Telegram ids nor the token appear anywhere in the answers
    assert event["payload"]["owner_telegram_ids"] == "***"
    for text in (shown.text, json.dumps(everything)):
        assert str(OWNER) not in text and str(OWNER + 1) not in text
        assert token.split(":")[1] not in text

    retried = await admin.post(
        f"/api/v1/events/{failed}/retry", headers={"X-Request-Id": "retry-event-1"}
    )
    assert retried.status_code == 202, retried.text
    again = retried.json()
    assert again["state"] == "pending" and again["failed_at"] is None and again["attempts"] == 0
    assert again["recipients_told"] == 1  # the owner already told is not told again
    row = await pool.fetchrow(
        "SELECT sent_to, next_attempt_at <= now() AS due, failed_at FROM control.events"
        " WHERE id = $1",
        failed,
    )
    assert row["sent_to"] == [OWNER] and row["due"] and row["failed_at"] is None
    audited = await pool.fetchrow(
        "SELECT actor, details, request_id FROM control.audit_log"
        " WHERE action = 'event.retry' AND target = $1",
        f"event:{failed}",
    )
    assert audited is not None and audited["actor"].startswith("apikey:")
    assert audited["request_id"] == "retry-event-1"
    assert audited["details"] == {"kind": "tenant.suspended", "tenant": slug}
    pending_now = await admin.get("/api/v1/events", params={"tenant": slug, "state": "pending"})
    assert [e["id"] for e in pending_now.json()["items"]] == [failed, pending]

    # Only a failed event can be retried; unknown ids are 404s.
    for not_failed in (failed, pending, delivered):
        conflict = await admin.post(f"/api/v1/events/{not_failed}/retry")
        assert conflict.status_code == 409, conflict.text
        assert "only failed events" in conflict.json()["detail"]
    assert (await admin.get("/api/v1/events/9223372036854775807")).status_code == 404
    assert (await admin.post("/api/v1/events/9223372036854775807/retry")).status_code == 404


async def test_bad_filters_are_named(admin: httpx.AsyncClient) -> None:
    for params, field in (
        ({"state": "lost"}, "state"),
        ({"tenant": "Not A Slug"}, "tenant"),
        ({"kind": "DROP TABLE"}, "kind"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ):
        response = await admin.get("/api/v1/events", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.text
    assert (await admin.get("/api/v1/events/0")).status_code == 422
    assert (await admin.get("/api/v1/events/abc")).status_code == 422
    unknown = await admin.get("/api/v1/events", params={"tenant": "zz_nobody_here"})
    assert unknown.status_code == 200 and unknown.json()["items"] == []


async def test_event_pages_are_newest_first_without_repeats(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    tenant_id = await _tenant_id(pool, slug)
    made = [await _event(pool, tenant_id, "tenant.live", state="failed") for _ in range(5)]
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"tenant": slug, "state": "failed", "limit": 2}
        page = (
            await admin.get(
                "/api/v1/events", params=params | ({"cursor": cursor} if cursor else {})
            )
        ).json()
        seen.extend(e["id"] for e in page["items"])
        # an event added meanwhile sorts before the first page: it never shifts the next one
        await _event(pool, tenant_id, "tenant.live", state="failed")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    jobs_cursor = (await admin.get("/api/v1/jobs", params={"limit": 1})).json()["next_cursor"]
    if jobs_cursor:  # a cursor of another listing is refused
        refused = await admin.get("/api/v1/events", params={"cursor": jobs_cursor})
        assert refused.status_code == 422


async def test_read_keys_read_and_only_admins_retry(
    app, make_key, created, admin: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    failed = await _event(pool, await _tenant_id(pool, slug), "tenant.live", state="failed")
    async with client_for(app, await make_key("read")) as reader:
        assert (await reader.get("/api/v1/events", params={"tenant": slug})).status_code == 200
        assert (await reader.get(f"/api/v1/events/{failed}")).status_code == 200
        assert (await reader.post(f"/api/v1/events/{failed}/retry")).status_code == 403
    async with client_for(app, await make_key("sales")) as sales:
        assert (await sales.get(f"/api/v1/events/{failed}")).status_code == 403
    async with client_for(app) as nobody:
        assert (await nobody.get("/api/v1/events")).status_code == 401
    assert await pool.fetchval("SELECT failed_at FROM control.events WHERE id = $1", failed)


async def test_a_retry_sent_twice_with_one_idempotency_key_answers_the_same(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    failed = await _event(pool, await _tenant_id(pool, slug), "tenant.live", state="failed")
    headers = {"Idempotency-Key": f"retry-{failed}-{datetime.now(UTC).timestamp()}"}
    first = await admin.post(f"/api/v1/events/{failed}/retry", headers=headers)
    second = await admin.post(f"/api/v1/events/{failed}/retry", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    entries = await pool.fetchval(
        "SELECT count(*) FROM control.audit_log WHERE action = 'event.retry' AND target = $1",
        f"event:{failed}",
    )
    assert entries == 1


async def test_events_of_a_deleted_tenant_stay_listable(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    tenant_id = await _tenant_id(pool, slug)
    failed = await _event(pool, tenant_id, "tenant.deleted", state="failed")
    await pool.execute(
        "UPDATE control.tenants SET deleted_at = $2, status = 'deleted' WHERE id = $1",
        tenant_id,
        datetime.now(UTC) - timedelta(minutes=1),
    )
    listed = await admin.get("/api/v1/events", params={"tenant": slug, "state": "failed"})
    assert [e["id"] for e in listed.json()["items"]] == [failed]
    assert listed.json()["items"][0]["tenant"] == slug
