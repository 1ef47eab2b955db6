"""Fixtures of the control plane tests: an app on the shared test database (its lifespan run, pool and
Redis injected), an HTTP client, API keys of each scope, and cleanup of everything a test created
(the control tables are shared with other tests: rows are created under unique names and removed by
those names, never by truncating)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from redis.asyncio import Redis

from control_plane.app import create_app
from fleet.apikeys import ApiKeyService
from fleet.settings import Settings, load_settings
from tests.support.api_support import client_for


@dataclass
class Created:
    """What a test created in the shared control tables, removed at teardown by name."""

    slugs: set[str] = field(default_factory=set)
    plans: set[str] = field(default_factory=set)
    api_key_ids: set[int] = field(default_factory=set)

    def slug(self) -> str:
        slug = "t" + secrets.token_hex(6)
        self.slugs.add(slug)
        return slug

    def plan_code(self) -> str:
        code = "p" + secrets.token_hex(6)
        self.plans.add(code)
        return code

    async def cleanup(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            plans, slugs = list(self.plans), list(self.slugs)
            await conn.execute(
                "DELETE FROM control.payments WHERE plan_code = ANY($1) OR tenant_id IN"
                " (SELECT id FROM control.tenants WHERE slug = ANY($2))",
                plans,
                slugs,
            )
            await conn.execute("DELETE FROM control.tenants WHERE slug = ANY($1)", slugs)
            await conn.execute("DELETE FROM control.plans WHERE code = ANY($1)", plans)
            await conn.execute(
                "DELETE FROM control.api_keys WHERE id = ANY($1)", list(self.api_key_ids)
            )


@pytest.fixture
def master_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def api_settings(database_url: str, redis_url: str, master_key: str) -> Settings:
    return load_settings(
        database_url=database_url,
        redis_url=redis_url,
        master_key=master_key,
        api_rate_limit="100000/minute",
        api_key_cache_s=0,
    )


@pytest.fixture
async def created(pool: asyncpg.Pool) -> AsyncIterator[Created]:
    things = Created()
    try:
        yield things
    finally:
        await things.cleanup(pool)


AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture
async def app_factory(
    api_settings: Settings, pool: asyncpg.Pool, redis: Redis
) -> AsyncIterator[AppFactory]:
    """Builds apps (settings overridable) with their lifespan running until the test ends."""
    stacks = []

    async def build(**overrides: Any) -> FastAPI:
        log_source = overrides.pop("log_source", None)
        settings = api_settings.model_copy(update=overrides)
        app = create_app(settings, pool=pool, redis=redis, log_source=log_source)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stacks.append(lifespan)
        return app

    try:
        yield build
    finally:
        for lifespan in reversed(stacks):
            await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def app(app_factory: AppFactory) -> FastAPI:
    return await app_factory()


KeyFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(pool: asyncpg.Pool, created: Created) -> KeyFactory:
    """Create an API key with the given scopes; returns the plain key."""

    async def make(*scopes: str, name: str = "test") -> str:
        made = await ApiKeyService(pool=pool).create(scopes=list(scopes), name=name, actor="tests")
        created.api_key_ids.add(made.record["id"])
        return made.key

    return make


@pytest.fixture
async def admin(app: FastAPI, make_key: KeyFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with an admin key."""
    async with client_for(app, await make_key("admin")) as client:
        yield client
