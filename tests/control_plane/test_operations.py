"""Jobs (list, get, retry a dead one), deployments (list, status, logs tail), payments (list, get,
pages) and the audit log (filters, pages)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from tests.support.api_support import client_for, make_token, tenant_body


async def _tenant(admin: httpx.AsyncClient, slug: str, **overrides: object) -> dict:
    response = await admin.post("/api/v1/tenants", json=tenant_body(slug, **overrides))
    assert response.status_code == 202, response.text
    return response.json()


async def test_jobs_list_get_and_retry_of_a_dead_job(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    job = (await _tenant(admin, slug))["job"]
    token = make_token()
    await pool.execute(
        "UPDATE control.jobs SET status = 'dead', attempts = 8, payload = $2,"
        " last_error = $3 WHERE id = $1",
        job["id"],
        {"bot_token": token, "step": "container"},
        f"getMe failed for {token}",
    )

    listed = await admin.get("/api/v1/jobs", params={"tenant": slug})
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]
    dead = await admin.get("/api/v1/jobs", params={"status": "dead", "kind": "provision"})
    assert job["id"] in {j["id"] for j in dead.json()["items"]}
    shown = await admin.get(f"/api/v1/jobs/{job['id']}")
    assert shown.status_code == 200
    assert shown.json()["payload"] == {"bot_token": "***", "step": "container"}
    assert token.split(":")[1] not in shown.text  # masked in last_error too

    retried = await admin.post(f"/api/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["status"] == "queued"
    assert retried.json()["attempts"] == 0
    again = await admin.post(f"/api/v1/jobs/{job['id']}/retry")
    assert again.status_code == 409
    assert "only dead jobs" in again.json()["detail"]
    assert (await admin.get("/api/v1/jobs/9223372036854775807")).status_code == 404
    assert (await admin.post("/api/v1/jobs/9223372036854775807/retry")).status_code == 404
    assert (await admin.get("/api/v1/jobs", params={"tenant": "zz_nobody"})).json()["items"] == []


async def test_job_pages_are_newest_first_without_repeats(
    admin: httpx.AsyncClient, created
) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    for action in ("suspend", "resume", "redeploy"):
        await admin.post(f"/api/v1/tenants/{slug}/{action}")
    ids, cursor = [], None
    while True:
        params = {"tenant": slug, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await admin.get("/api/v1/jobs", params=params)).json()
        ids.extend(j["id"] for j in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == 4
    assert ids == sorted(ids, reverse=True)


async def test_deployment_status_list_and_logs(
    app_factory, make_key, created, pool: asyncpg.Pool
) -> None:
    class FakeRuntime:
        kind = "process"

        def __init__(self) -> None:
            self.asked: list[tuple[str, int]] = []

        async def logs(self, slug: str, *, tail: int = 200) -> str:
            self.asked.append((slug, tail))
            return "\n".join(
                [f"line {i}" for i in range(5)]
                + ["token 123456789:AAbcdefghijklmnopqrstuvwxyz0123456"]
            )

    runtime = FakeRuntime()
    app = await app_factory(log_source=runtime)
    async with client_for(app, await make_key("admin")) as admin:
        slug = created.slug()
        await _tenant(admin, slug)
        none_yet = await admin.get(f"/api/v1/tenants/{slug}/deployment")
        assert none_yet.status_code == 404
        assert "deploy worker" in none_yet.json()["detail"]

        tenant_id = await pool.fetchval("SELECT id FROM control.tenants WHERE slug = $1", slug)
        await pool.execute(
            "INSERT INTO control.deployments (tenant_id, runtime, status, image, last_error)"
            " VALUES ($1, 'process', 'failed', 'botfleet/tenant-bot:1', $2)",
            tenant_id,
            "crashed with token 123456789:AAbcdefghijklmnopqrstuvwxyz0123456",
        )
        shown = await admin.get(f"/api/v1/tenants/{slug}/deployment")
        assert shown.status_code == 200
        deployment = shown.json()
        assert deployment["status"] == "failed"
        assert deployment["image"] == "botfleet/tenant-bot:1"
        assert deployment["desired_state"] == "running"
        assert "AAbcdefghijklmnopqrstuvwxyz" not in shown.text

        failed = await admin.get("/api/v1/deployments", params={"status": "failed", "limit": 200})
        assert slug in {d["tenant"] for d in failed.json()["items"]}

        logs = await admin.get(f"/api/v1/tenants/{slug}/deployment/logs", params={"lines": 3})
        assert logs.status_code == 200
        assert logs.json()["source"] == "process"
        assert logs.json()["lines"][:2] == ["line 3", "line 4"]
        assert "AAbcdefghijklmnopqrstuvwxyz" not in logs.text
        assert runtime.asked == [(slug, 3)]
        unknown = await admin.get("/api/v1/tenants/zz_nobody_here/deployment/logs")
        assert unknown.status_code == 404


async def test_logs_without_a_log_source_are_a_clear_503(admin: httpx.AsyncClient, created) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    response = await admin.get(f"/api/v1/tenants/{slug}/deployment/logs")
    assert response.status_code == 503
    assert "no log source" in response.json()["detail"]


async def test_payments_list_get_and_pages(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    plan = created.plan_code()
    await admin.post(
        "/api/v1/plans", json={"code": plan, "name": "P", "price": "990", "period_days": 30}
    )
    slug = created.slug()
    await _tenant(admin, slug, plan_code=plan)
    tenant_id = await pool.fetchval("SELECT id FROM control.tenants WHERE slug = $1", slug)
    base = datetime.now(UTC)
    ids = []
    for i in range(5):
        ids.append(
            await pool.fetchval(
                "INSERT INTO control.payments (tenant_id, plan_code, amount, currency, status,"
                " metadata, created_at) VALUES ($1, $2, 990, 'RUB', $3, $4, $5) RETURNING id",
                tenant_id,
                plan,
                "succeeded" if i % 2 else "pending",
                {"tenant": slug, "secret_hint": "x"},
                base - timedelta(minutes=i),
            )
        )
    seen, cursor = [], None
    while True:
        params = {"plan": plan, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await admin.get("/api/v1/payments", params=params)).json()
        seen.extend(p["id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(i) for i in ids]  # newest first
    succeeded = await admin.get("/api/v1/payments", params={"tenant": slug, "status": "succeeded"})
    assert len(succeeded.json()["items"]) == 2
    one = await admin.get(f"/api/v1/payments/{ids[0]}")
    assert one.status_code == 200
    assert one.json()["amount"] == "990.00"
    assert one.json()["tenant"] == slug
    assert one.json()["metadata"] == {"tenant": slug, "secret_hint": "***"}
    assert (await admin.get(f"/api/v1/payments/{uuid.uuid4()}")).status_code == 404
    assert (await admin.get("/api/v1/payments/not-a-uuid")).status_code == 422


async def test_audit_log_filters_and_pages(admin: httpx.AsyncClient, created) -> None:
    slug = created.slug()
    await _tenant(admin, slug)
    await admin.post(f"/api/v1/tenants/{slug}/suspend", headers={"X-Request-Id": "audit-req-1"})
    await admin.post(f"/api/v1/tenants/{slug}/resume")
    entries = (await admin.get("/api/v1/audit-log", params={"target": slug})).json()["items"]
    assert [e["action"] for e in entries] == ["tenant.resume", "tenant.suspend", "tenant.create"]
    assert entries[1]["request_id"] == "audit-req-1"
    assert entries[0]["actor"].startswith("apikey:")
    only = await admin.get("/api/v1/audit-log", params={"target": slug, "action": "tenant.suspend"})
    assert len(only.json()["items"]) == 1
    by_actor = await admin.get(
        "/api/v1/audit-log", params={"actor": entries[0]["actor"], "limit": 1}
    )
    page = by_actor.json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    second = await admin.get(
        "/api/v1/audit-log",
        params={"actor": entries[0]["actor"], "limit": 1, "cursor": page["next_cursor"]},
    )
    assert second.json()["items"][0]["id"] < page["items"][0]["id"]
