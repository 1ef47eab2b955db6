"""One way to create a tenant: an operator's (``TenantService.create``) and a buyer's (checkout) rows
are built by ``fleet.tenant_rows`` under the same rules, and rows leave the repository typed."""

from __future__ import annotations

import dataclasses
import re

import asyncpg
import pytest
from redis.asyncio import Redis

from fleet.billing.wiring import Billing
from fleet.errors import ConflictError
from fleet.repositories.tenants import SHOWN_COLUMNS, ShownTenant, Tenant, TenantRepository
from fleet.secrets import SecretBox, fingerprint
from fleet.tenants import TenantService
from sandbox.testing import new_bot_token
from schemas.tenants import TenantCreate, bot_id_of


def _operator_tenant(slug: str, token: str, plan: asyncpg.Record) -> TenantCreate:
    return TenantCreate(
        slug=slug,
        display_name="Shop",
        owner_telegram_ids=[5],
        bot_token=token,
        plan_code=plan["code"],
    )


async def _create(service: TenantService, data: TenantCreate) -> Tenant:
    return await service.create(data, actor="test", provision_now=False, enqueue_provision=False)


@pytest.fixture
def service(pool: asyncpg.Pool, redis: Redis, secret_box: SecretBox) -> TenantService:
    return TenantService(pool=pool, redis=redis, secrets=secret_box)


def _assert_stored_by_the_rules(tenant: Tenant, token: str, box: SecretBox) -> None:
    assert box.decrypt(tenant.bot_token_enc) == token != tenant.bot_token_enc
    assert tenant.bot_token_fingerprint == fingerprint(token)
    assert tenant.bot_id == bot_id_of(token)
    db_password = box.decrypt(tenant.db_password_enc)
    redis_password = box.decrypt(tenant.redis_password_enc)
    assert len(db_password) == len(redis_password) == 32 and db_password != redis_password


async def test_both_paths_store_a_tenant_by_the_same_rules(
    billing: Billing,
    make_order,
    service: TenantService,
    pool: asyncpg.Pool,
    plan: asyncpg.Record,
    secret_box: SecretBox,
    unique_slug: str,
) -> None:
    token = new_bot_token()
    made = await _create(service, _operator_tenant(unique_slug, token, plan))
    _assert_stored_by_the_rules(made, token, secret_box)
    assert (made.status, made.desired_state) == ("provisioning", "running")

    order = make_order(owner=4242)
    checkout = await billing.checkout.purchase(order)
    bought = await TenantRepository(pool).get_by_id(checkout.tenant_id)
    assert bought is not None
    _assert_stored_by_the_rules(bought, order.bot_token, secret_box)
    assert (bought.status, bought.desired_state) == ("new", "stopped")
    assert bought.owner_telegram_ids == [4242] and bought.bot_username == order.bot_username


async def test_a_bot_serves_one_tenant_whichever_path_took_it(
    billing: Billing, make_order, service: TenantService, plan: asyncpg.Record, unique_slug: str
) -> None:
    token = new_bot_token()
    await _create(service, _operator_tenant(unique_slug, token, plan))
    with pytest.raises(ConflictError) as bought:
        await billing.checkout.purchase(make_order(bot_token=token, bot_id=bot_id_of(token)))
    assert bought.value.field == "bot_token"

    order = make_order()
    await billing.checkout.purchase(order)
    with pytest.raises(ConflictError) as created:
        await _create(service, _operator_tenant(unique_slug[:26] + "_two", order.bot_token, plan))
    assert created.value.field == "bot_token"
    assert "already used by another tenant" in created.value.message


async def test_a_taken_slug_is_refused_to_an_operator_and_varied_for_a_buyer(
    billing: Billing, make_order, service: TenantService, plan: asyncpg.Record, unique_slug: str
) -> None:
    await _create(service, _operator_tenant(unique_slug, new_bot_token(), plan))
    with pytest.raises(ConflictError) as taken:
        await _create(service, _operator_tenant(unique_slug, new_bot_token(), plan))
    assert taken.value.field == "slug"

    # A buyer's slug comes from the bot's username; a taken one gets a suffix instead.
    checkout = await billing.checkout.purchase(make_order(bot_username=unique_slug))
    assert re.fullmatch(rf"{unique_slug[:24]}_[0-9a-f]{{6}}", checkout.tenant_slug)


async def test_the_tenant_types_hold_every_column_and_no_ciphertext_in_repr(
    pool: asyncpg.Pool, service: TenantService, plan: asyncpg.Record, unique_slug: str
) -> None:
    columns = {
        r["column_name"]
        for r in await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'control' AND table_name = 'tenants'"
        )
    }
    assert {f.name for f in dataclasses.fields(Tenant)} == columns
    shown = {name.strip() for name in SHOWN_COLUMNS.split(",")}
    assert {f.name for f in dataclasses.fields(ShownTenant)} == shown

    tenant = await _create(service, _operator_tenant(unique_slug, new_bot_token(), plan))
    assert "_enc" not in repr(tenant) and tenant.bot_token_enc not in repr(tenant)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tenant.status = "active"  # type: ignore[misc]
