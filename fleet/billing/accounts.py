"""What an owner does with their bots from the sales bot: look, switch auto-renewal, change token."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from fleet import jobs
from fleet.bot_tokens import BotIdentity
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.tenants import TenantRepository
from fleet.secrets import SecretBox, fingerprint
from fleet.tenant_rows import bot_columns, bot_taken
from schemas.plans import plan_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnerBot:
    """One of an owner's bots with its subscription, as the sales bot shows it."""

    tenant_id: int
    slug: str
    display_name: str
    bot_username: str | None
    status: str
    desired_state: str
    locale: str
    plan_name: str | None
    price: Decimal | None
    currency: str | None
    subscription_status: str | None
    paid_until: datetime | None
    auto_renew: bool
    has_payment_method: bool
    payment_method_title: str | None
    timezone: str = "UTC"
    plan_translations: dict[str, Any] = field(default_factory=dict)

    def plan_name_in(self, locale: str) -> str | None:
        """The plan's name in ``locale`` (its translation, else its name); None without a plan."""
        if self.plan_name is None:
            return None
        plan = {"name": self.plan_name, "description": "", "translations": self.plan_translations}
        return plan_text(plan, locale)[0]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> OwnerBot:
        return cls(
            tenant_id=row["tenant_id"],
            slug=row["slug"],
            display_name=row["display_name"],
            bot_username=row["bot_username"],
            status=row["status"],
            desired_state=row["desired_state"],
            locale=row["locale"],
            plan_name=row["plan_name"],
            price=row["price"],
            currency=row["currency"].strip() if row["currency"] else None,
            subscription_status=row["subscription_status"],
            paid_until=row["current_period_end"],
            auto_renew=bool(row["auto_renew"]),
            has_payment_method=bool(row["has_payment_method"]),
            payment_method_title=row["payment_method_title"],
            timezone=row["timezone"],
            plan_translations=row["plan_translations"] or {},
        )


class OwnerAccounts:
    """An owner's view of their tenants; every call checks the owner owns the tenant."""

    def __init__(self, *, pool: asyncpg.Pool, secrets: SecretBox) -> None:
        self._pool = pool
        self._secrets = secrets

    async def list_bots(self, owner_telegram_id: int) -> list[OwnerBot]:
        rows = await subscription_repo.list_for_owner(self._pool, owner_telegram_id)
        return [OwnerBot.from_row(row) for row in rows]

    async def get_bot(self, owner_telegram_id: int, tenant_id: int) -> OwnerBot:
        for bot in await self.list_bots(owner_telegram_id):
            if bot.tenant_id == tenant_id:
                return bot
        raise NotFoundError("you have no such bot")

    async def set_auto_renew(
        self, *, owner_telegram_id: int, tenant_id: int, enabled: bool
    ) -> OwnerBot:
        """Switch automatic renewal; turning it on needs a card saved by an earlier payment."""
        bot = await self.get_bot(owner_telegram_id, tenant_id)
        if bot.subscription_status is None:
            raise ValidationError("auto_renew", "pay for the bot first")
        if enabled and not bot.has_payment_method:
            raise ValidationError(
                "auto_renew", "no saved card: pay once with 'remember the card' to turn this on"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            await subscription_repo.set_auto_renew(conn, tenant_id, enabled=enabled)
            await audit.record(
                conn,
                actor=f"telegram:{owner_telegram_id}",
                action="subscription.auto_renew",
                target=bot.slug,
                details={"enabled": enabled},
            )
        return await self.get_bot(owner_telegram_id, tenant_id)

    async def change_token(
        self,
        *,
        owner_telegram_id: int,
        tenant_id: int,
        token: str,
        identity: BotIdentity,
    ) -> OwnerBot:
        """Point a tenant at another bot (a token checked with getMe); a running tenant is
        redeployed with it."""
        token_fp = fingerprint(token)
        async with self._pool.acquire() as conn, conn.transaction():
            repo = TenantRepository(conn)
            tenant = await repo.lock(tenant_id)
            if (
                tenant is None
                or tenant.deleted_at is not None
                or owner_telegram_id not in tenant.owner_telegram_ids
            ):
                raise NotFoundError("you have no such bot")
            if tenant.desired_state == "deleted":
                raise ConflictError("bot_token", "this bot is being deleted")
            if tenant.bot_token_fingerprint == token_fp:
                raise ValidationError("bot_token", "this is the token the bot already uses")
            if await repo.using_bot(token_fp, identity.id, excluding=tenant_id) is not None:
                raise bot_taken()
            await repo.update(
                tenant_id,
                bot_username=identity.username,
                **bot_columns(self._secrets, token, bot_id=identity.id),
            )
            if tenant.status != "new" and tenant.desired_state == "running":
                await jobs.enqueue(conn, kind="redeploy", tenant_id=tenant_id)
            await audit.record(
                conn,
                actor=f"telegram:{owner_telegram_id}",
                action="tenant.change_token",
                target=tenant.slug,
                details={"bot_id": identity.id},
            )
        log.info("bot token changed", extra={"tenant": tenant.slug})
        return await self.get_bot(owner_telegram_id, tenant_id)
