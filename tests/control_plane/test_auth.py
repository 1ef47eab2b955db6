"""Authentication and the scope matrix: 401 without a valid key, 403 without the scope, 429 over the
rate with ``Retry-After``; keys are stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from control_plane.routes import audit, deployments, jobs, payments, plans, tenants
from fleet.apikeys import ApiKeyService
from tests.support.api_support import client_for

PARAMS = {
    "slug": "zz_nobody_here",
    "code": "basic_nope",
    "payment_id": "00000000-0000-0000-0000-000000000000",
    "job_id": "9223372036854775807",
}
# (method, path template) -> the scopes that may call it besides admin. Bodies are irrelevant: a
# caller that passes auth gets 404/422, one that does not gets 401/403 first.
MATRIX: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "/api/v1/plans", ("read", "sales")),
    ("POST", "/api/v1/plans", ()),
    ("GET", "/api/v1/plans/{code}", ("read", "sales")),
    ("PATCH", "/api/v1/plans/{code}", ()),
    ("DELETE", "/api/v1/plans/{code}", ()),
    ("GET", "/api/v1/tenants", ("read",)),
    ("POST", "/api/v1/tenants", ("sales",)),
    ("GET", "/api/v1/tenants/{slug}", ("read", "sales")),
    ("PATCH", "/api/v1/tenants/{slug}", ()),
    ("DELETE", "/api/v1/tenants/{slug}", ()),
    ("POST", "/api/v1/tenants/{slug}/suspend", ()),
    ("POST", "/api/v1/tenants/{slug}/resume", ()),
    ("POST", "/api/v1/tenants/{slug}/redeploy", ()),
    ("GET", "/api/v1/tenants/{slug}/subscriptions", ("read",)),
    ("GET", "/api/v1/tenants/{slug}/deployment", ("read",)),
    ("GET", "/api/v1/tenants/{slug}/deployment/logs", ("read",)),
    ("GET", "/api/v1/deployments", ("read",)),
    ("GET", "/api/v1/payments", ("read",)),
    ("GET", "/api/v1/payments/{payment_id}", ("read",)),
    ("GET", "/api/v1/jobs", ("read",)),
    ("GET", "/api/v1/jobs/{job_id}", ("read",)),
    ("POST", "/api/v1/jobs/{job_id}/retry", ()),
    ("GET", "/api/v1/audit-log", ("read",)),
]


def _operations(router: APIRouter) -> set[tuple[str, str]]:
    found = set()
    for route in router.routes:
        if isinstance(route, APIRoute):
            found.update((method, route.path) for method in route.methods)
    return found


def test_matrix_covers_every_api_operation() -> None:
    ours = set()
    for module in (plans, tenants, deployments, payments, jobs, audit):
        ours |= _operations(module.router)
    assert ours == {(method, path) for method, path, _ in MATRIX}


@pytest.mark.parametrize(("method", "path", "scopes"), MATRIX)
async def test_scope_matrix(
    app: FastAPI, make_key, method: str, path: str, scopes: tuple[str, ...]
) -> None:
    path = path.format(**PARAMS)
    keys = {scope: await make_key(scope) for scope in ("admin", "read", "sales")}
    async with client_for(app) as anonymous:
        response = await anonymous.request(method, path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
    async with client_for(app, "bfk_" + "x" * 43) as wrong:
        assert (await wrong.request(method, path)).status_code == 401
    for scope, key in keys.items():
        async with client_for(app, key) as client:
            response = await client.request(method, path, json={})
        if scope == "admin" or scope in scopes:
            assert response.status_code not in (401, 403), (scope, response.text)
        else:
            assert response.status_code == 403, (scope, response.text)
            assert scope in response.json()["detail"]


async def test_other_auth_schemes_and_revoked_keys_are_401(
    app: FastAPI, make_key, pool: asyncpg.Pool
) -> None:
    key = await make_key("read")
    async with client_for(app) as client:
        basic = await client.get("/api/v1/plans", headers={"Authorization": f"Basic {key}"})
        assert basic.status_code == 401
    async with client_for(app, key) as client:
        assert (await client.get("/api/v1/plans")).status_code == 200
        key_id = await pool.fetchval(
            "SELECT id FROM control.api_keys WHERE key_hash = $1",
            hashlib.sha256(key.encode()).hexdigest(),
        )
        await ApiKeyService(pool=pool).revoke(key_id, actor="tests")
        assert (await client.get("/api/v1/plans")).status_code == 401


async def test_keys_are_stored_only_as_hashes(make_key, pool: asyncpg.Pool) -> None:
    key = await make_key("admin", name="hash-check")
    row = await pool.fetchrow(
        "SELECT * FROM control.api_keys WHERE key_hash = $1",
        hashlib.sha256(key.encode()).hexdigest(),
    )
    assert row is not None
    assert key not in {str(v) for v in dict(row).values()}
    assert row["key_prefix"] == key[:12]
    assert row["last_used_at"] is None


async def test_rate_limit_answers_429_with_retry_after(app_factory, make_key) -> None:
    app = await app_factory(api_rate_limit="3/minute")
    key, other = await make_key("read"), await make_key("read")
    async with client_for(app, key) as client:
        statuses = [(await client.get("/api/v1/plans")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/api/v1/plans")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["title"] == "Too many requests"
    async with client_for(app, other) as client:  # limits are per key
        assert (await client.get("/api/v1/plans")).status_code == 200


async def _taken(limiter, identity: str) -> int:
    """What ``identity`` has taken from the shared counter, once no batch is being fetched ahead
    for it in the background."""
    import asyncio

    for _ in range(1000):
        if identity not in limiter._fetching_ahead:
            stats = await limiter._limiter.get_window_stats(limiter._item, identity)
            return limiter._item.amount - stats.remaining
        await asyncio.sleep(0.005)
    raise AssertionError(f"a batch of {identity} was still being fetched ahead after 5 s")


async def test_high_rates_are_counted_in_redis_in_small_batches(redis) -> None:
    import asyncio

    from control_plane.ratelimit import RateLimiter

    identity = "test-batch-" + secrets.token_hex(4)
    exact = RateLimiter(redis=redis, rate="600/minute")
    assert exact.batch == 1
    fast = RateLimiter(redis=redis, rate="6000/second")
    assert fast.batch == 60
    for _ in range(100):
        assert (await fast.hit(identity)).allowed
        await asyncio.sleep(0)  # like requests arriving one after another: fetches ahead can run
    taken = await _taken(fast, identity)
    # batches of 60 from the shared counter: the two used, and at most one more fetched ahead
    assert taken in (120, 180)
    async for key in redis.scan_iter(f"tenant_:bf:ratelimit:*{identity}*"):
        await redis.delete(key)


async def test_concurrent_requests_share_one_batch(redis) -> None:
    """Requests in flight together wait for one refill instead of each taking a batch (which
    would count far more than was used and throttle the key early)."""
    import asyncio

    from control_plane.ratelimit import RateLimiter

    identity = "test-herd-" + secrets.token_hex(4)
    fast = RateLimiter(redis=redis, rate="6000/second")
    decisions = await asyncio.gather(*(fast.hit(identity) for _ in range(50)))
    assert all(decision.allowed for decision in decisions)
    # one batch for all 50, and at most one fetched ahead once half of it was spent
    assert await _taken(fast, identity) in (60, 120)
    async for key in redis.scan_iter(f"tenant_:bf:ratelimit:*{identity}*"):
        await redis.delete(key)


async def test_the_next_batch_is_fetched_before_this_one_runs_out(redis) -> None:
    """A busy key's requests do not wait for Redis at a batch boundary: once a batch starts to be
    spent, the next one is fetched in the background and added to what is left."""

    from control_plane.ratelimit import RateLimiter

    identity = "test-ahead-" + secrets.token_hex(4)
    fast = RateLimiter(redis=redis, rate="6000/second")
    assert (await fast.hit(identity)).allowed  # takes the first batch (60), spends one
    assert identity not in fast._fetching_ahead
    for _ in range(10):  # 49 left
        assert (await fast.hit(identity)).allowed
    assert identity in fast._fetching_ahead
    assert await _taken(fast, identity) == 120  # fetched ahead
    credits, _ = fast._credits[identity]
    assert credits == 49 + 60  # what was left, plus the new batch
    async for key in redis.scan_iter(f"tenant_:bf:ratelimit:*{identity}*"):
        await redis.delete(key)


async def test_near_the_limit_requests_are_counted_one_by_one(redis) -> None:
    from control_plane.ratelimit import RateLimiter

    identity = "test-edge-" + secrets.token_hex(4)
    limiter = RateLimiter(redis=redis, rate="200/second", batch_fraction=0.05)
    assert limiter.batch == 10
    await limiter._limiter.hit(limiter._item, identity, cost=195)  # another process's use
    decisions = [await limiter.hit(identity) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert all(d.retry_after_s >= 1 for d in decisions[5:])
    async for key in redis.scan_iter(f"tenant_:bf:ratelimit:*{identity}*"):
        await redis.delete(key)
