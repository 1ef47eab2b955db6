"""Fixtures of the booking-core tests: a fresh tenant schema per test, used through the tenant's role.

The pool connects as the tenant's own login role (trust auth here), so every test proves the core works
with the tenant's limited privileges and its role-default ``search_path``, exactly like the bot.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from fleet.data_plane import (
    TenantNames,
    TenantRoleLimits,
    drop_database_plane,
    ensure_database_plane,
)
from tenant_bot.booking import BookingCore, WorkInterval
from tests.support.booking_helpers import FakeClock, Shop


@pytest.fixture
async def tenant_names(
    pool: asyncpg.Pool, unique_slug: str, role_prefix: str
) -> AsyncIterator[TenantNames]:
    names = TenantNames.of(unique_slug, role_prefix)
    async with pool.acquire() as conn:
        # These tests drive more concurrency through one role (16 connections) than one tenant
        # bot ever opens (its pool of 5), so they raise the role's connection limit for it.
        await ensure_database_plane(
            conn, names, password=secrets.token_hex(8), limits=TenantRoleLimits(connection_limit=24)
        )
    try:
        yield names
    finally:
        async with pool.acquire() as conn:
            await drop_database_plane(conn, names)


@pytest.fixture
async def tenant_pool(database_url: str, tenant_names: TenantNames) -> AsyncIterator[asyncpg.Pool]:
    """A pool connected as the tenant role (its CONNECTION LIMIT is 24 here)."""
    tenant = await asyncpg.create_pool(
        database_url, user=tenant_names.role, password="unused", min_size=1, max_size=16
    )
    try:
        yield tenant
    finally:
        await tenant.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(tenant_pool: asyncpg.Pool, clock: FakeClock) -> BookingCore:
    return BookingCore(tenant_pool, clock=clock)


@pytest.fixture
async def shop(core: BookingCore) -> Shop:
    await core.catalogue.update_settings(
        time_zone="Europe/Moscow",
        slot_step_minutes=30,
        min_notice_minutes=60,
        horizon_days=30,
        max_active_per_customer=3,
        cancel_notice_minutes=120,
        reschedule_notice_minutes=120,
    )
    service = await core.catalogue.create_service(name="Haircut", duration_minutes=60, price=1500)
    ivan = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
    olga = await core.catalogue.create_staff(name="Olga", service_ids=[service.id], sort_order=1)
    for member in (ivan, olga):
        for weekday in range(7):
            await core.catalogue.set_working_hours(
                member.id, weekday, [WorkInterval.parse("09:00-18:00")]
            )
    return Shop(service, ivan, olga)
