"""What an owner does with their bots from the sales bot: look, switch auto-renewal, change token."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from fleet import jobs
from fleet.billing.config import Clock, utc_now
from fleet.bot_tokens import BotIdentity
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories import payments as payment_read_repo
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
    plan_code: str | None = None
    period_days: int | None = None
    # a change scheduled for the end of the paid time: the next plan and when it starts
    next_plan_code: str | None = None
    next_plan_name: str | None = None
    next_plan_translations: dict[str, Any] = field(default_factory=dict)
    next_plan_at: datetime | None = None
    next_price: Decimal | None = None
    next_period_days: int | None = None
    autopay_consented: bool = False

    def next_plan_name_in(self, locale: str) -> str | None:
        """The scheduled plan's name in ``locale``; None when no change is scheduled."""
        if self.next_plan_name is None:
            return None
        plan = {
            "name": self.next_plan_name,
            "description": "",
            "translations": self.next_plan_translations,
        }
        return plan_text(plan, locale)[0]

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
            plan_code=row["plan_code"] or row["tenant_plan_code"],
            period_days=row["period_days"],
            next_plan_code=row["next_plan_code"],
            next_plan_name=row["next_plan_name"],
            next_plan_translations=row["next_plan_translations"] or {},
            next_plan_at=row["scheduled_plan_at"],
            next_price=row["next_price"],
            next_period_days=row["next_period_days"],
            autopay_consented=bool(row["autopay_consented"]),
        )


PER_PAGE = 8
CANCEL_HOW = "sales bot: My bots -> the bot -> Turn auto-renewal off (one tap, any time)"


def consent_terms(
    *, plan_code: str, amount: Decimal, currency: str, period_days: int, now: datetime
) -> dict[str, Any]:
    """What a payer agrees to for automatic charges, as recorded (YooKassa requires the amount,
    the period and how to cancel to be agreed before a card is saved for them)."""
    return {
        "plan_code": plan_code,
        "amount": f"{Decimal(amount):.2f}",
        "currency": currency.strip(),
        "period_days": period_days,
        "cancel": CANCEL_HOW,
        "agreed_at": now.isoformat(),
    }


@dataclass(frozen=True)
class HistoryEntry:
    """One payment in an owner's history."""

    day: datetime
    amount: Decimal
    currency: str
    status: str
    purpose: str
    plan_name: str
    plan_translations: dict[str, Any]
    cancellation_reason: str | None
    refunded: Decimal | None

    def plan_name_in(self, locale: str) -> str:
        plan = {"name": self.plan_name, "description": "", "translations": self.plan_translations}
        return plan_text(plan, locale)[0]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> HistoryEntry:
        return cls(
            day=row["paid_at"] or row["created_at"],
            amount=row["amount"],
            currency=row["currency"].strip(),
            status=row["status"],
            purpose=row["purpose"],
            plan_name=row["plan_name"],
            plan_translations=row["plan_translations"] or {},
            cancellation_reason=row["cancellation_reason"],
            refunded=row["refunded_amount"] or None,
        )


@dataclass(frozen=True)
class HistoryPage:
    """A page of a bot's payments (``page`` from 0, newest first)."""

    bot: OwnerBot
    page: int
    entries: list[HistoryEntry]
    has_older: bool


class OwnerAccounts:
    """An owner's view of their tenants; every call checks the owner owns the tenant."""

    def __init__(self, *, pool: asyncpg.Pool, secrets: SecretBox, clock: Clock = utc_now) -> None:
        self._pool = pool
        self._secrets = secrets
        self._clock = clock

    async def list_bots(self, owner_telegram_id: int) -> list[OwnerBot]:
        rows = await subscription_repo.list_for_owner(self._pool, owner_telegram_id)
        return [OwnerBot.from_row(row) for row in rows]

    async def get_bot(self, owner_telegram_id: int, tenant_id: int) -> OwnerBot:
        for bot in await self.list_bots(owner_telegram_id):
            if bot.tenant_id == tenant_id:
                return bot
        raise NotFoundError("you have no such bot")

    async def set_auto_renew(
        self,
        *,
        owner_telegram_id: int,
        tenant_id: int,
        enabled: bool,
        consent: dict[str, Any] | None = None,
    ) -> OwnerBot:
        """Switch automatic renewal; turning it on needs a card saved by an earlier payment and
        the owner's consent to the terms (:meth:`autopay_terms`, recorded with its time)."""
        bot = await self.get_bot(owner_telegram_id, tenant_id)
        if bot.subscription_status is None:
            raise ValidationError("auto_renew", "pay for the bot first")
        if enabled and not bot.has_payment_method:
            raise ValidationError(
                "auto_renew", "no saved card: pay once with 'remember the card' to turn this on"
            )
        if enabled and consent is None:
            raise ValidationError(
                "consent", "automatic charges need the owner's consent to the amount and period"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            await subscription_repo.set_auto_renew(conn, tenant_id, enabled=enabled)
            if consent is not None:
                await subscription_repo.record_autopay_consent(conn, tenant_id, consent=consent)
            await audit.record(
                conn,
                actor=f"telegram:{owner_telegram_id}",
                action="subscription.auto_renew",
                target=bot.slug,
                details={"enabled": enabled, **({"consent": consent} if consent else {})},
            )
        return await self.get_bot(owner_telegram_id, tenant_id)

    def autopay_terms(self, bot: OwnerBot) -> dict[str, Any]:
        """The terms an owner agrees to when automatic charges are turned on again: the next
        period's plan, amount and length, and how to cancel; stamped with the time of consent."""
        price = bot.next_price if bot.next_plan_code else bot.price
        return consent_terms(
            plan_code=bot.next_plan_code or bot.plan_code or "",
            amount=price if price is not None else Decimal(0),
            currency=bot.currency or "RUB",
            period_days=bot.next_period_days or bot.period_days or 0,
            now=self._clock(),
        )

    async def payment_history(
        self, owner_telegram_id: int, tenant_id: int, *, page: int, per_page: int = PER_PAGE
    ) -> HistoryPage:
        """One page (from 0) of a bot's payments, newest first, as its owner sees them."""
        bot = await self.get_bot(owner_telegram_id, tenant_id)
        page = max(page, 0)
        rows = await payment_read_repo.history_page(
            self._pool, tenant_id=tenant_id, offset=page * per_page, limit=per_page + 1
        )
        return HistoryPage(
            bot=bot,
            page=page,
            entries=[HistoryEntry.from_row(r) for r in rows[:per_page]],
            has_older=len(rows) > per_page,
        )

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
