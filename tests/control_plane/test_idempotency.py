"""``Idempotency-Key`` on POST: replay, refusal of reuse with another body, one execution under
concurrency, scoping per API key."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
from fastapi import FastAPI

from tests.support.api_support import client_for, tenant_body


async def test_same_key_and_body_replays_the_first_answer(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    body = tenant_body(slug)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await admin.post("/api/v1/tenants", json=body, headers=key)
    assert first.status_code == 202
    reordered = dict(reversed(list(body.items())))  # key order does not matter
    second = await admin.post("/api/v1/tenants", json=reordered, headers=key)
    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    jobs = await pool.fetchval(
        "SELECT count(*) FROM control.jobs j JOIN control.tenants t ON t.id = j.tenant_id"
        " WHERE t.slug = $1",
        slug,
    )
    assert jobs == 1


async def test_a_stored_error_is_replayed_too(admin: httpx.AsyncClient, created) -> None:
    slug = created.slug()
    await admin.post("/api/v1/tenants", json=tenant_body(slug))
    key = {"Idempotency-Key": "dup-" + uuid.uuid4().hex}
    body = tenant_body(slug)
    first = await admin.post("/api/v1/tenants", json=body, headers=key)
    second = await admin.post("/api/v1/tenants", json=body, headers=key)
    assert first.status_code == second.status_code == 409
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == "application/problem+json"


async def test_same_key_with_another_body_is_refused(admin: httpx.AsyncClient, created) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await admin.post("/api/v1/tenants", json=tenant_body(created.slug()), headers=key)
    assert first.status_code == 202
    other = await admin.post("/api/v1/tenants", json=tenant_body(created.slug()), headers=key)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    elsewhere = await admin.post("/api/v1/plans", json={"code": "x"}, headers=key)
    assert elsewhere.status_code == 422


async def test_concurrent_requests_with_one_key_execute_once(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    slug = created.slug()
    body = tenant_body(slug)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    responses = await asyncio.gather(
        *(admin.post("/api/v1/tenants", json=body, headers=key) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [202] * 4
    assert len({r.json()["job"]["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 3
    audits = await pool.fetchval(
        "SELECT count(*) FROM control.audit_log WHERE action = 'tenant.create' AND target = $1",
        slug,
    )
    assert audits == 1


async def test_keys_are_scoped_per_api_key_and_unauthorized_requests_store_nothing(
    app: FastAPI, make_key, created, pool: asyncpg.Pool
) -> None:
    idem = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}
    async with client_for(app, await make_key("read")) as reader:
        assert (await reader.post("/api/v1/plans", json={}, headers=idem)).status_code == 403
    stored = await pool.fetchval(
        "SELECT count(*) FROM control.idempotency_keys WHERE key = $1", idem["Idempotency-Key"]
    )
    assert stored == 0
    async with client_for(app, await make_key("admin")) as one:
        a = await one.post("/api/v1/tenants", json=tenant_body(created.slug()), headers=idem)
    async with client_for(app, await make_key("admin")) as two:
        b = await two.post("/api/v1/tenants", json=tenant_body(created.slug()), headers=idem)
    assert a.status_code == b.status_code == 202
    assert "idempotent-replayed" not in b.headers


async def test_malformed_key_is_a_validation_problem(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/api/v1/plans", json={}, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 422
    assert "Idempotency-Key" in {e["field"] for e in response.json()["errors"]}


def test_every_post_of_the_api_documents_idempotency_key(app: FastAPI) -> None:
    for path, operations in app.openapi()["paths"].items():
        post = operations.get("post")
        if post is None or not path.startswith("/api/v1/"):
            continue
        names = {p["name"] for p in post.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in names, path
