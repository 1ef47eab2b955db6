"""Tenants through the API: create (202 + provision job), read, list with filters and cursor pages,
change, lifecycle transitions, subscriptions; secrets never in a response."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from tests.support.api_support import make_token, tenant_body


async def _create(admin: httpx.AsyncClient, slug: str, **overrides: object) -> dict:
    response = await admin.post("/api/v1/tenants", json=tenant_body(slug, **overrides))
    assert response.status_code == 202, response.text
    return response.json()


async def test_create_answers_202_with_the_provision_job_carrying_the_request_id(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    body = tenant_body(slug)
    response = await admin.post(
        "/api/v1/tenants", json=body, headers={"X-Request-Id": "req-create-1"}
    )
    assert response.status_code == 202
    assert response.headers["location"] == f"/api/v1/tenants/{slug}"
    assert response.headers["x-request-id"] == "req-create-1"
    data = response.json()
    assert data["tenant"]["slug"] == slug
    assert data["tenant"]["desired_state"] == "running"
    assert data["job"]["kind"] == "provision"
    assert data["job"]["tenant"] == slug
    assert data["job"]["request_id"] == "req-create-1"
    stored = await pool.fetchval(
        "SELECT request_id FROM control.jobs WHERE id = $1", data["job"]["id"]
    )
    assert stored == "req-create-1"
    audit = await pool.fetchrow(
        "SELECT actor, request_id FROM control.audit_log WHERE action = 'tenant.create'"
        " AND target = $1",
        slug,
    )
    assert audit["request_id"] == "req-create-1"
    assert audit["actor"].startswith("apikey:")


async def test_no_secret_ever_appears_in_tenant_responses(
    admin: httpx.AsyncClient, created
) -> None:
    slug = created.slug()
    token = make_token()
    bot_id, secret = token.split(":")
    created_body = await _create(admin, slug, bot_token=token)
    assert created_body["tenant"]["bot_token"] == f"{bot_id}:{secret[:2]}…{secret[-2:]}"
    shown = (await admin.get(f"/api/v1/tenants/{slug}")).text
    listed = (await admin.get("/api/v1/tenants", params={"limit": 200})).text
    for text in (json.dumps(created_body), shown, listed):
        assert secret not in text
        assert "_enc" not in text
        assert "password" not in text
        assert "v1:" not in text  # ciphertext prefix


async def test_validation_problems_name_the_field(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/api/v1/tenants", json=tenant_body("Bad Slug", bot_token="not-a-token")
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:botfleet:problem:validation"
    assert problem["status"] == 422
    assert problem["instance"] == "/api/v1/tenants"
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert "barber_ivan" in fields["slug"]
    assert "@BotFather" in fields["bot_token"]
    assert "not-a-token" not in response.text  # input is never echoed


async def test_unknown_plan_is_a_validation_problem(admin: httpx.AsyncClient, created) -> None:
    response = await admin.post(
        "/api/v1/tenants", json=tenant_body(created.slug(), plan_code="no_such_plan")
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "plan_code", "message": response.json()["errors"][0]["message"]}
    ]


async def test_duplicate_slug_and_token_in_use_are_409(admin: httpx.AsyncClient, created) -> None:
    slug = created.slug()
    token = make_token()
    await _create(admin, slug, bot_token=token)
    again = await admin.post("/api/v1/tenants", json=tenant_body(slug))
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "slug"
    same_token = await admin.post(
        "/api/v1/tenants", json=tenant_body(created.slug(), bot_token=token)
    )
    assert same_token.status_code == 409
    assert same_token.json()["errors"][0]["field"] == "bot_token"


async def test_two_concurrent_creates_of_one_slug_give_one_202_and_one_409(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    responses = await asyncio.gather(
        admin.post("/api/v1/tenants", json=tenant_body(slug)),
        admin.post("/api/v1/tenants", json=tenant_body(slug)),
    )
    assert sorted(r.status_code for r in responses) == [202, 409]
    count = await pool.fetchval(
        "SELECT count(*) FROM control.tenants WHERE slug = $1 AND deleted_at IS NULL", slug
    )
    assert count == 1


async def test_get_unknown_tenant_is_404_problem(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/api/v1/tenants/zz_nobody_here")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"
    assert "zz_nobody_here" in response.json()["detail"]


async def test_list_filters_by_status_and_plan(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    plan = created.plan_code()
    await admin.post(
        "/api/v1/plans", json={"code": plan, "name": "P", "price": "10", "period_days": 30}
    )
    on_plan = created.slug()
    await _create(admin, on_plan, plan_code=plan)
    other = created.slug()
    await _create(admin, other, plan_code=plan)
    await pool.execute("UPDATE control.tenants SET status = 'active' WHERE slug = $1", other)

    by_plan = (await admin.get("/api/v1/tenants", params={"plan": plan})).json()
    assert {t["slug"] for t in by_plan["items"]} == {on_plan, other}
    active = (await admin.get("/api/v1/tenants", params={"plan": plan, "status": "active"})).json()
    assert [t["slug"] for t in active["items"]] == [other]
    bad = await admin.get("/api/v1/tenants", params={"status": "sleeping"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "status"


async def test_pages_cover_every_tenant_once_while_others_are_inserted(
    admin: httpx.AsyncClient, created
) -> None:
    plan = created.plan_code()
    await admin.post(
        "/api/v1/plans", json={"code": plan, "name": "P", "price": "1", "period_days": 30}
    )
    first = [created.slug() for _ in range(7)]
    for slug in first:
        await _create(admin, slug, plan_code=plan)

    seen: list[str] = []
    inserted: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"plan": plan, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await admin.get("/api/v1/tenants", params=params)
        assert response.status_code == 200
        page = response.json()
        seen.extend(t["slug"] for t in page["items"])
        pages += 1
        if pages <= 2:  # tenants created between page reads land after the last page read
            extra = created.slug()
            inserted.append(extra)
            await _create(admin, extra, plan_code=plan)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a tenant appeared on two pages"
    assert seen[:7] == first
    assert set(seen) == set(first) | set(inserted)


async def test_cursor_from_another_listing_or_garbage_is_refused(
    admin: httpx.AsyncClient,
) -> None:
    from control_plane.pagination import encode_cursor

    for cursor in ("garbage!", encode_cursor("jobs", 5), encode_cursor("tenants", "x")):
        response = await admin.get("/api/v1/tenants", params={"cursor": cursor})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "cursor"


async def test_patch_changes_fields_and_redeploys_when_the_bot_sees_the_change(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    plan = created.plan_code()
    await admin.post(
        "/api/v1/plans", json={"code": plan, "name": "Pro", "price": "5", "period_days": 30}
    )
    await _create(admin, slug)

    plan_only = await admin.patch(f"/api/v1/tenants/{slug}", json={"plan_code": plan})
    assert plan_only.status_code == 200
    assert plan_only.json()["tenant"]["plan_code"] == plan
    assert plan_only.json()["job"] is None  # the bot does not see plans

    new_token = make_token()
    changed = await admin.patch(
        f"/api/v1/tenants/{slug}",
        json={
            "display_name": "  Renamed  ",
            "owner_telegram_ids": [11, 22, 11],
            "locale": "en",
            "timezone": "Asia/Yekaterinburg",
            "bot_token": new_token,
        },
    )
    assert changed.status_code == 200, changed.text
    tenant, job = changed.json()["tenant"], changed.json()["job"]
    assert tenant["display_name"] == "Renamed"
    assert tenant["owner_telegram_ids"] == [11, 22]
    assert tenant["locale"] == "en"
    assert tenant["timezone"] == "Asia/Yekaterinburg"
    assert tenant["bot_id"] == int(new_token.split(":")[0])
    assert tenant["bot_token"].endswith(new_token[-2:])
    assert new_token.split(":")[1] not in changed.text
    assert job["kind"] == "redeploy"
    details = await pool.fetchval(
        "SELECT details FROM control.audit_log WHERE action = 'tenant.update' AND target = $1"
        " ORDER BY id DESC LIMIT 1",
        slug,
    )
    assert details["fields"] == sorted(
        ["bot_token", "display_name", "locale", "owner_telegram_ids", "timezone"]
    )

    unchanged = await admin.patch(f"/api/v1/tenants/{slug}", json={"locale": "en"})
    assert unchanged.status_code == 200
    assert unchanged.json()["job"] is None


async def test_patch_refuses_bad_input_and_a_token_of_another_tenant(
    admin: httpx.AsyncClient, created
) -> None:
    slug, other = created.slug(), created.slug()
    other_token = make_token()
    await _create(admin, slug)
    await _create(admin, other, bot_token=other_token)

    empty = await admin.patch(f"/api/v1/tenants/{slug}", json={})
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "body"
    nulled = await admin.patch(f"/api/v1/tenants/{slug}", json={"display_name": None})
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["field"] == "display_name"
    zone = await admin.patch(f"/api/v1/tenants/{slug}", json={"timezone": "Mars/Olympus"})
    assert zone.status_code == 422
    assert zone.json()["errors"][0]["field"] == "timezone"
    unknown = await admin.patch(f"/api/v1/tenants/{slug}", json={"plan_code": "nope_plan"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "plan_code"
    extra = await admin.patch(f"/api/v1/tenants/{slug}", json={"status": "active"})
    assert extra.status_code == 422
    taken = await admin.patch(f"/api/v1/tenants/{slug}", json={"bot_token": other_token})
    assert taken.status_code == 409
    assert taken.json()["errors"][0]["field"] == "bot_token"
    missing = await admin.patch("/api/v1/tenants/zz_nobody_here", json={"locale": "en"})
    assert missing.status_code == 404


async def test_lifecycle_transitions_answer_202_with_their_jobs(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    await _create(admin, slug)

    suspended = await admin.post(f"/api/v1/tenants/{slug}/suspend")
    assert suspended.status_code == 202
    assert suspended.json()["tenant"]["desired_state"] == "stopped"
    assert suspended.json()["job"]["kind"] == "suspend"
    again = await admin.post(f"/api/v1/tenants/{slug}/suspend")
    assert again.json()["job"]["id"] == suspended.json()["job"]["id"]  # no duplicate job

    refused = await admin.post(f"/api/v1/tenants/{slug}/redeploy")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "desired_state"

    resumed = await admin.post(f"/api/v1/tenants/{slug}/resume")
    assert resumed.status_code == 202
    assert resumed.json()["tenant"]["desired_state"] == "running"
    assert resumed.json()["job"]["kind"] == "resume"

    redeployed = await admin.post(f"/api/v1/tenants/{slug}/redeploy")
    assert redeployed.status_code == 202
    assert redeployed.json()["job"]["kind"] == "redeploy"

    deleted = await admin.delete(f"/api/v1/tenants/{slug}")
    assert deleted.status_code == 202
    assert deleted.json()["tenant"]["status"] == "deleting"
    assert deleted.json()["tenant"]["desired_state"] == "deleted"
    assert deleted.json()["job"]["kind"] == "deprovision"

    after = await admin.post(f"/api/v1/tenants/{slug}/resume")
    assert after.status_code == 409
    actions = await pool.fetch(
        "SELECT action FROM control.audit_log WHERE target = $1 ORDER BY id", slug
    )
    assert [a["action"] for a in actions] == [
        "tenant.create",
        "tenant.suspend",
        "tenant.suspend",
        "tenant.resume",
        "tenant.redeploy",
        "tenant.delete",
    ]
    for path in ("suspend", "resume", "redeploy"):
        missing = await admin.post(f"/api/v1/tenants/zz_nobody_here/{path}")
        assert missing.status_code == 404
    assert (await admin.delete("/api/v1/tenants/zz_nobody_here")).status_code == 404


async def test_subscriptions_of_a_tenant(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    plan = created.plan_code()
    await admin.post(
        "/api/v1/plans", json={"code": plan, "name": "P", "price": "100", "period_days": 30}
    )
    tenant = (await _create(admin, slug, plan_code=plan))["tenant"]
    assert (await admin.get(f"/api/v1/tenants/{slug}/subscriptions")).json()["items"] == []

    start = datetime.now(UTC)
    tenant_id = await pool.fetchval("SELECT id FROM control.tenants WHERE slug = $1", slug)
    await pool.execute(
        "INSERT INTO control.subscriptions (tenant_id, plan_code, current_period_start,"
        " current_period_end, payment_method_id_enc) VALUES ($1, $2, $3, $4, 'v1:x:secret')",
        tenant_id,
        plan,
        start,
        start + timedelta(days=30),
    )
    response = await admin.get(f"/api/v1/tenants/{slug}/subscriptions")
    assert response.status_code == 200
    [subscription] = response.json()["items"]
    assert subscription["tenant"] == tenant["slug"]
    assert subscription["plan_code"] == plan
    assert subscription["has_saved_payment_method"] is True
    assert "secret" not in response.text
    missing = await admin.get("/api/v1/tenants/zz_nobody_here/subscriptions")
    assert missing.status_code == 404
