"""Writing a tenant's control row: the one way to create a tenant, and to point one at a bot.

Both creation paths (an operator's or the API's ``TenantService.create``, a buyer's purchase in
``fleet.billing.checkout``) and every token change (the admin API, an owner in the sales bot) build
their columns here, so the rules hold everywhere: the bot token and the tenant's passwords are stored
encrypted, the token's fingerprint and its bot's id are stored with it, a bot serves at most one live
tenant (``TenantRepository.using_bot``), and a live tenant's slug is its own. The unique indexes on
live tenants back the last two up under races.
"""

from __future__ import annotations

import secrets as random_tokens
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from fleet.errors import ConflictError
from fleet.repositories.tenants import BOT_TAKEN, SLUG_TAKEN, Tenant, TenantRepository
from fleet.secrets import SecretBox, fingerprint, generate_password
from schemas.tenants import bot_id_of


@dataclass(frozen=True)
class TenantSecrets:
    """A tenant's decrypted secrets: only for the data plane and the runtime spec."""

    bot_token: str = field(repr=False)
    db_password: str = field(repr=False)
    redis_password: str = field(repr=False)


@dataclass(frozen=True)
class NewTenant:
    """What a new tenant's row is made of; ``bot_id`` defaults to the one in the token."""

    slug: str
    display_name: str
    owner_telegram_ids: list[int]
    bot_token: str = field(repr=False)
    plan_code: str | None
    locale: str
    timezone: str
    status: str
    desired_state: str
    bot_id: int | None = None
    bot_username: str | None = None


def bot_taken() -> ConflictError:
    return ConflictError("bot_token", BOT_TAKEN)


def bot_columns(box: SecretBox, token: str, *, bot_id: int | None = None) -> dict[str, Any]:
    """The columns that tie a tenant to a bot: the token encrypted, its fingerprint, the bot's id."""
    return {
        "bot_token_enc": box.encrypt(token),
        "bot_token_fingerprint": fingerprint(token),
        "bot_id": bot_id_of(token) if bot_id is None else bot_id,
    }


def secrets_of(box: SecretBox, tenant: Tenant) -> TenantSecrets:
    return TenantSecrets(
        bot_token=box.decrypt(tenant.bot_token_enc),
        db_password=box.decrypt(tenant.db_password_enc),
        redis_password=box.decrypt(tenant.redis_password_enc),
    )


async def insert_tenant(
    conn: asyncpg.Connection, box: SecretBox, new: NewTenant, *, slug_attempts: int = 1
) -> tuple[Tenant, TenantSecrets]:
    """Insert the tenant (in the caller's transaction) with fresh database and Redis passwords;
    returns the row and its secrets in the clear (to build its data plane now).

    A bot already serving a live tenant is a :class:`ConflictError` on ``bot_token``. A taken slug
    is one on ``slug``, unless ``slug_attempts`` > 1 lets it try variants (``<slug>_<6 hex>``)."""
    repo = TenantRepository(conn)
    columns = bot_columns(box, new.bot_token, bot_id=new.bot_id)
    if await repo.using_bot(columns["bot_token_fingerprint"], columns["bot_id"]) is not None:
        raise bot_taken()
    db_password, redis_password = generate_password(), generate_password()
    for attempt in range(slug_attempts):
        slug = new.slug if attempt == 0 else f"{new.slug[:24]}_{random_tokens.token_hex(3)}"
        if await repo.get(slug) is not None:
            continue
        tenant = await repo.insert(
            slug=slug,
            display_name=new.display_name,
            owner_telegram_ids=new.owner_telegram_ids,
            plan_code=new.plan_code,
            locale=new.locale,
            timezone=new.timezone,
            bot_username=new.bot_username,
            db_password_enc=box.encrypt(db_password),
            redis_password_enc=box.encrypt(redis_password),
            status=new.status,
            desired_state=new.desired_state,
            **columns,
        )
        return tenant, TenantSecrets(new.bot_token, db_password, redis_password)
    if slug_attempts == 1:
        raise ConflictError("slug", SLUG_TAKEN)
    raise ConflictError("slug", "could not find a free name for this bot; try again")
