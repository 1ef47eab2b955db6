"""Issue 14 item 2: installations sharing one Redis and PostgreSQL never share tenant data.

Two installations (two role prefixes) each provision a tenant with the SAME slug on the shared
servers, through ``TenantService`` as the deploy worker does. Tenant A logs in to Redis with its real
ACL credentials and goes after B's keys; removing A must leave B's keys alone. A tenant created
before installation prefixes has its keys moved under its prefix at its next provision.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from control_plane.ratelimit import RateLimiter
from fleet.identifiers import legacy_redis_prefix, platform_redis_key
from fleet.secrets import SecretBox, generate_master_key
from fleet.tenants import TenantService
from schemas.tenants import TenantCreate


def _token() -> str:
    return f"{secrets.randbelow(10**9) + 10**9}:AA{secrets.token_urlsafe(33)[:33]}"


@dataclass
class Installations:
    """Two installations on the shared servers, and the tenants they provisioned (dropped after)."""

    one: TenantService
    two: TenantService
    made: list[tuple[TenantService, str]] = field(default_factory=list)

    async def provision(self, service: TenantService, pool: asyncpg.Pool, slug: str) -> Redis:
        """Provision ``slug`` in ``service``'s installation as the worker does; its bot's client.
        Two installations have two control databases; here they share one, so the control row is
        made under a slug of its own and gone once the data plane is built."""
        row_slug = f"{slug}_{len(self.made)}"
        await service.create(
            TenantCreate(
                slug=row_slug, display_name="Shop", owner_telegram_ids=[1], bot_token=_token()
            ),
            actor="test",
            provision_now=False,
            enqueue_provision=False,
        )
        tenant = replace(await service.get(row_slug), slug=slug)
        await pool.execute("DELETE FROM control.tenants WHERE slug = $1", row_slug)
        await service.ensure_data_plane(tenant)
        self.made.append((service, slug))
        names, password = service.names(slug), service.secrets_of(tenant).redis_password
        return Redis.from_url(f"redis://{names.redis_user}:{password}@127.0.0.1:6379/0")


@pytest.fixture
async def installations(pool: asyncpg.Pool, redis: Redis) -> AsyncIterator[Installations]:
    box = SecretBox(generate_master_key())
    one, two = (
        TenantService(pool=pool, redis=redis, secrets=box, role_prefix=f"x{secrets.token_hex(3)}_")
        for _ in range(2)
    )
    made = Installations(one, two)
    try:
        yield made
    finally:
        for service, slug in made.made:
            await service.drop_data_plane(slug)
            await pool.execute("DELETE FROM control.tenants WHERE slug = $1", slug)


async def test_two_installations_with_one_slug_keep_apart(
    installations: Installations, pool: asyncpg.Pool, redis: Redis
) -> None:
    one, two = installations.one, installations.two
    slug = "t" + secrets.token_hex(6)
    a = await installations.provision(one, pool, slug)
    b = await installations.provision(two, pool, slug)
    a_prefix, b_prefix = one.names(slug).redis_prefix, two.names(slug).redis_prefix
    assert a_prefix != b_prefix and a_prefix.endswith(f":t:{slug}:")
    try:
        await b.set(f"{b_prefix}fsm:42", "B's customer")
        await a.set(f"{a_prefix}fsm:42", "A's customer")
        for attack in (
            a.get(f"{b_prefix}fsm:42"),
            a.set(f"{b_prefix}fsm:42", "overwritten"),
            a.delete(f"{b_prefix}fsm:42"),
            a.get(legacy_redis_prefix(slug) + "fsm:42"),  # the old shared name is no one's now
            a.publish(f"{b_prefix}events", "x"),
        ):
            with pytest.raises(NoPermissionError):
                await attack
        assert await b.get(f"{b_prefix}fsm:42") == b"B's customer"
        # Removing installation one's tenant deletes its keys only.
        await one.drop_data_plane(slug)
        installations.made.remove((one, slug))
        assert await redis.exists(f"{a_prefix}fsm:42") == 0
        assert await redis.get(f"{b_prefix}fsm:42") == b"B's customer"
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_tenant_from_before_prefixes_has_its_keys_moved_once(
    installations: Installations, pool: asyncpg.Pool, redis: Redis
) -> None:
    service = installations.one
    slug = "t" + secrets.token_hex(6)
    await service.create(
        TenantCreate(slug=slug, display_name="Old", owner_telegram_ids=[1], bot_token=_token()),
        actor="test",
        provision_now=False,
        enqueue_provision=False,
    )
    installations.made.append((service, slug))
    tenant = await service.get(slug)
    assert tenant.legacy_redis_keys is False  # created after the upgrade: nothing to move
    # As the upgrade finds it: a tenant row from before, its keys under the old prefix.
    await pool.execute("UPDATE control.tenants SET legacy_redis_keys = true WHERE slug = $1", slug)
    old = legacy_redis_prefix(slug)
    await redis.set(f"{old}locale:1001", "en")
    await redis.set(f"{old}fsm:1001:data", '{"service": 3}')
    new = service.names(slug).redis_prefix
    await redis.set(f"{new}fsm:1001:data", '{"service": 4}')  # written since: kept
    await service.ensure_data_plane(await service.get(slug))
    assert await redis.get(f"{new}locale:1001") == b"en"
    assert await redis.get(f"{new}fsm:1001:data") == b'{"service": 4}'
    assert [k async for k in redis.scan_iter(match=f"{old}*")] == []
    assert (await service.get(slug)).legacy_redis_keys is False
    # The bot, with its real credentials, reads its moved keys and nothing under the old prefix.
    secrets_ = service.secrets_of(await service.get(slug))
    names = service.names(slug)
    bot = Redis.from_url(f"redis://{names.redis_user}:{secrets_.redis_password}@127.0.0.1:6379/0")
    try:
        assert await bot.get(f"{new}locale:1001") == b"en"
        with pytest.raises(NoPermissionError):
            await bot.get(f"{old}locale:1001")
    finally:
        await bot.aclose()
    await redis.set(f"{old}locale:1001", "ru")  # a later provision moves nothing again
    await service.ensure_data_plane(await service.get(slug))
    assert await redis.get(f"{old}locale:1001") == b"ru"
    await redis.delete(f"{old}locale:1001")


async def test_the_api_rate_limits_of_two_installations_are_counted_apart(redis: Redis) -> None:
    one, two = (platform_redis_key(f"x{secrets.token_hex(3)}_", "ratelimit") for _ in range(2))
    first = RateLimiter(redis=redis, rate="2/minute", key_prefix=one, batch_fraction=0)
    second = RateLimiter(redis=redis, rate="2/minute", key_prefix=two, batch_fraction=0)
    try:
        assert [(await first.hit("apikey:1")).allowed for _ in range(3)] == [True, True, False]
        assert (await second.hit("apikey:1")).allowed  # the same key id elsewhere is not throttled
    finally:
        for prefix in (one, two):
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.unlink(*keys)
