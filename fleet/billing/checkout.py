"""Creating payments: a new tenant's purchase, an owner's renewal, an automatic renewal charge.

Every payment is first a row in ``control.payments`` with OUR idempotence key, committed before
YooKassa is called. If the call times out the row stays ``new`` and the next attempt (a retry inside
the client, the buyer pressing "pay" again, the next lifecycle run) sends the SAME key, so YooKassa
returns the payment it already made instead of charging twice.

A purchase also creates the tenant, unpaid: status ``new``, desired state ``stopped``, no job. Its
bot token is then reserved (a token is used by one live tenant only); payment starts provisioning,
and an abandoned purchase is released by the lifecycle after a while.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from fleet.billing.accounts import consent_terms
from fleet.billing.config import BillingConfig, Clock, utc_now
from fleet.billing.errors import ProviderRejected, ProviderUnavailable
from fleet.billing.payments import PaymentService, Result
from fleet.billing.receipts import Contact, ReceiptBook, check_contact
from fleet.billing.yookassa import Receipt, YooKassaClient
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories import payment_writes as payment_repo
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import Tenant, TenantRepository
from fleet.secrets import SecretBox, fingerprint
from fleet.tenant_rows import NewTenant, bot_columns, bot_taken, insert_tenant
from schemas.plans import plan_text
from schemas.tenants import check_timezone

log = logging.getLogger(__name__)

_SLUG_CHARS = re.compile(r"[^a-z0-9_]+")


def slug_for_bot(username: str) -> str:
    """A tenant slug from a bot's username (``Ivan_Barber_bot`` -> ``ivan_barber_bot``)."""
    slug = _SLUG_CHARS.sub("_", username.lower()).strip("_")
    slug = slug.lstrip("0123456789_")
    if len(slug) < 3:
        slug = f"bot_{slug}" if slug else "bot"
        slug = slug.ljust(3, "x")
    return slug[:31]


@dataclass(frozen=True)
class Order:
    """A buyer's order of a new bot; the token was already checked with ``getMe``."""

    owner_telegram_id: int
    plan_code: str
    display_name: str
    bot_token: str
    bot_id: int
    bot_username: str
    timezone: str = "Europe/Moscow"
    locale: str = "ru"
    save_payment_method: bool = False
    customer_email: str | None = None
    customer_phone: str | None = None
    # the terms the buyer agreed to for automatic charges (with ``save_payment_method``)
    autopay_consent: dict[str, Any] | None = None


@dataclass(frozen=True)
class Checkout:
    """A payment waiting for the buyer: send them to ``confirmation_url``."""

    payment_id: Any
    tenant_id: int
    tenant_slug: str
    confirmation_url: str
    amount: Decimal
    currency: str
    plan_name: str
    plan_translations: dict[str, Any] = field(default_factory=dict)

    def plan_name_in(self, locale: str) -> str:
        """The plan's name in ``locale`` (its translation, else its name)."""
        plan = {"name": self.plan_name, "description": "", "translations": self.plan_translations}
        return plan_text(plan, locale)[0]


class CheckoutService:
    """Starts payments. ``payments`` applies immediate results of automatic charges."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        provider: YooKassaClient,
        payments: PaymentService,
        secrets: SecretBox,
        config: BillingConfig,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._provider = provider
        self._payments = payments
        self._secrets = secrets
        self._config = config
        self._clock = clock
        self.receipts = ReceiptBook(config)

    @property
    def receipts_required(self) -> bool:
        """Whether buyers must give an email or phone for a 54-FZ receipt."""
        return self._config.receipts

    async def list_plans(self) -> list[asyncpg.Record]:
        """Plans on sale, cheapest first."""
        return await PlanRepository(self._pool).list(active_only=True)

    def autopay_consent(self, plan: asyncpg.Record) -> dict[str, Any]:
        """The consent a buyer gives now to automatic charges of ``plan`` (recorded with the
        payment that saves their card)."""
        return consent_terms(
            plan_code=plan["code"],
            amount=plan["price"],
            currency=plan["currency"],
            period_days=plan["period_days"],
            now=self._clock(),
        )

    async def token_available(self, *, token: str, bot_id: int, owner_telegram_id: int) -> bool:
        """Whether ``owner_telegram_id`` may buy for this bot: no live tenant uses it, or only
        their own unpaid purchase of it (which a new checkout reuses)."""
        row = await TenantRepository(self._pool).using_bot(fingerprint(token), bot_id)
        return row is None or (
            row.status == "new" and list(row.owner_telegram_ids) == [owner_telegram_id]
        )

    async def active_plan(self, code: str) -> asyncpg.Record:
        plan = await PlanRepository(self._pool).get(code)
        if plan is None or not plan["active"]:
            raise ValidationError("plan_code", f"there is no plan {code!r} on sale")
        return plan

    async def purchase(self, order: Order, *, request_id: str | None = None) -> Checkout:
        """Reserve the bot as an unpaid tenant and start its first payment."""
        plan = await self.active_plan(order.plan_code)
        contact = self._check_contact(order.customer_email, order.customer_phone)
        self._check_consent(order.save_payment_method, order.autopay_consent)
        if not 1 <= len(order.display_name.strip()) <= 128:
            raise ValidationError("display_name", "give the business a name of 1-128 characters")
        try:
            check_timezone(order.timezone)
        except ValueError as exc:
            raise ValidationError("timezone", str(exc)) from None
        async with self._pool.acquire() as conn, conn.transaction():
            tenant = await self._reserve_tenant(conn, order, plan_code=plan["code"])
            await self.receipts.remember(conn, tenant.id, contact)
            payment = await self._open_payment(
                conn,
                tenant=tenant,
                plan=plan,
                purpose="purchase",
                payer=order.owner_telegram_id,
                save_payment_method=order.save_payment_method,
                contact=contact,
                autopay_consent=order.autopay_consent if order.save_payment_method else None,
            )
            await audit.record(
                conn,
                actor=f"telegram:{order.owner_telegram_id}",
                action="payment.checkout",
                target=tenant.slug,
                details={"plan_code": plan["code"], "payment_id": str(payment["id"])},
                request_id=request_id,
            )
        return await self._submit(payment, tenant=tenant, plan=plan)

    async def renew(
        self,
        *,
        tenant_id: int,
        owner_telegram_id: int,
        plan_code: str | None = None,
        save_payment_method: bool = False,
        customer_email: str | None = None,
        customer_phone: str | None = None,
        autopay_consent: dict[str, Any] | None = None,
    ) -> Checkout:
        """Start a payment extending an owner's tenant (or resuming it if suspended); saving the
        card for automatic charges needs the owner's ``autopay_consent``. The receipt goes to the
        contact given, else to the tenant's stored one."""
        given = check_contact(customer_email, customer_phone)
        self._check_consent(save_payment_method, autopay_consent)
        tenant = await TenantRepository(self._pool).get_by_id(tenant_id)
        if (
            tenant is None
            or tenant.deleted_at is not None
            or owner_telegram_id not in tenant.owner_telegram_ids
        ):
            raise NotFoundError("you have no such bot")
        if tenant.desired_state == "deleted":
            raise ConflictError("tenant", "this bot is being deleted and cannot be renewed")
        subscription = await subscription_repo.get_for_tenant(self._pool, tenant_id)
        # A scheduled plan change: the next period is paid at the new plan's price.
        next_plan = subscription["scheduled_plan_code"] if subscription else None
        plan = await self.active_plan(plan_code or next_plan or tenant.plan_code or "")
        contact = given or await self.receipts.contact_of(self._pool, tenant.id)
        self._check_contact(contact.email, contact.phone)
        async with self._pool.acquire() as conn, conn.transaction():
            await self.receipts.remember(conn, tenant.id, given)
            payment = await self._open_payment(
                conn,
                tenant=tenant,
                plan=plan,
                purpose="purchase" if tenant.status == "new" else "renewal",
                payer=owner_telegram_id,
                save_payment_method=save_payment_method,
                contact=contact,
                autopay_consent=autopay_consent if save_payment_method else None,
            )
        return await self._submit(payment, tenant=tenant, plan=plan)

    async def charge_saved_method(
        self, *, tenant_id: int, request_id: str | None = None
    ) -> Result | None:
        """Charge a subscription's saved payment method for its next period (auto-renewal).

        At most one charge per period (a unique index); a charge that never reached YooKassa is
        resent with its key. Returns what applying the answer did, None when there was nothing to do.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            subscription = await subscription_repo.lock_for_tenant(conn, tenant_id)
            if (
                subscription is None
                or subscription["status"] != "active"
                or not subscription["auto_renew"]
                or subscription["payment_method_id_enc"] is None
            ):
                return None
            tenant = await TenantRepository(conn).get_by_id(tenant_id)
            plan = await PlanRepository(conn).get(
                subscription["scheduled_plan_code"] or subscription["plan_code"]
            )
            if tenant is None or plan is None or not plan["active"]:
                return None
            contact = await self.receipts.contact_of(conn, tenant_id)
            if self.receipts.required and not contact:
                log.error("auto-renewal without a receipt contact", extra={"tenant": tenant.slug})
            payment = await payment_repo.insert_auto_renewal(
                conn,
                tenant_id=tenant_id,
                plan_code=plan["code"],
                amount=plan["price"],
                currency=plan["currency"].strip(),
                description=self._description(plan, tenant),
                renews_period_end=subscription["current_period_end"],
                metadata={"receipt": contact.as_dict()},
            )
            method_id = self._secrets.decrypt(subscription["payment_method_id_enc"])
        if payment is None:
            return None
        try:
            remote = await self._provider.create_payment(
                idempotence_key=payment["idempotence_key"],
                amount=payment["amount"],
                currency=payment["currency"].strip(),
                description=payment["description"],
                metadata=self._metadata(payment),
                payment_method_id=method_id,
                receipt=self._receipt(payment),
            )
        except ProviderRejected as exc:
            await payment_repo.store_provider_error(self._pool, payment["id"], error=str(exc))
            return await self._payments.record_refused(
                payment["id"], reason=exc.code, request_id=request_id
            )
        except ProviderUnavailable as exc:
            await payment_repo.store_provider_error(self._pool, payment["id"], error=str(exc))
            raise
        await payment_repo.store_provider_result(
            self._pool,
            payment["id"],
            provider_payment_id=remote.id,
            status=_row_status(remote.status),
            confirmation_url=None,
        )
        return await self._payments.apply(remote, request_id=request_id)

    async def submit(
        self, payment: asyncpg.Record, *, tenant: Tenant, plan: asyncpg.Record
    ) -> Checkout:
        """Send a committed payment row to YooKassa, as every checkout is (plan changes use it)."""
        return await self._submit(payment, tenant=tenant, plan=plan)

    def description(self, plan: asyncpg.Record, tenant: Tenant) -> str:
        """The payment description YooKassa shows (and the receipt item carries)."""
        return self._description(plan, tenant)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _check_consent(save_payment_method: bool, consent: dict[str, Any] | None) -> None:
        # YooKassa: a card is saved for automatic charges only with the payer's consent to them.
        if save_payment_method and not consent:
            raise ValidationError(
                "autopay_consent",
                "saving the card for automatic charges needs the payer's consent to the amount,"
                " the period and how to cancel (CheckoutService.autopay_consent)",
            )

    def _check_contact(self, email: str | None, phone: str | None) -> Contact:
        contact = check_contact(email, phone)
        if self._config.receipts and not contact:
            raise ValidationError(
                "contact", "a receipt must be sent: give an e-mail address or a phone number"
            )
        return contact

    async def _reserve_tenant(
        self, conn: asyncpg.Connection, order: Order, *, plan_code: str
    ) -> Tenant:
        """The buyer's unpaid tenant for this bot: theirs from an earlier attempt, or a new one."""
        repo = TenantRepository(conn)
        existing = await repo.using_bot(fingerprint(order.bot_token), order.bot_id, for_update=True)
        if existing is not None:
            if existing.status != "new" or existing.owner_telegram_ids != [order.owner_telegram_id]:
                raise bot_taken()
            updated = await repo.update(
                existing.id,
                display_name=order.display_name,
                plan_code=plan_code,
                locale=order.locale,
                timezone=order.timezone,
                bot_username=order.bot_username,
                **bot_columns(self._secrets, order.bot_token, bot_id=order.bot_id),
            )
            assert updated is not None
            return updated
        tenant, _ = await insert_tenant(
            conn,
            self._secrets,
            NewTenant(
                slug=slug_for_bot(order.bot_username),
                display_name=order.display_name,
                owner_telegram_ids=[order.owner_telegram_id],
                bot_token=order.bot_token,
                bot_id=order.bot_id,
                bot_username=order.bot_username,
                status="new",
                desired_state="stopped",
                plan_code=plan_code,
                locale=order.locale,
                timezone=order.timezone,
            ),
            slug_attempts=5,
        )
        return tenant

    async def _open_payment(
        self,
        conn: asyncpg.Connection,
        *,
        tenant: Tenant,
        plan: asyncpg.Record,
        purpose: str,
        payer: int,
        save_payment_method: bool,
        contact: Contact,
        autopay_consent: dict[str, Any] | None = None,
    ) -> asyncpg.Record:
        """An unpaid checkout of this tenant and plan to reuse, or a new payment row."""
        reusable = await payment_repo.find_open_checkout(
            conn,
            tenant_id=tenant.id,
            plan_code=plan["code"],
            save_payment_method=save_payment_method,
            created_after=self._clock() - self._config.checkout_reuse,
        )
        if reusable is not None and reusable["amount"] == plan["price"]:
            return reusable
        return await payment_repo.insert_payment(
            conn,
            tenant_id=tenant.id,
            plan_code=plan["code"],
            amount=plan["price"],
            currency=plan["currency"].strip(),
            description=self._description(plan, tenant),
            purpose=purpose,
            payer_telegram_id=payer,
            save_payment_method=save_payment_method,
            metadata={"receipt": contact.as_dict()},
            autopay_consent=autopay_consent,
        )

    @staticmethod
    def _description(plan: asyncpg.Record, tenant: Tenant) -> str:
        who = f"@{tenant.bot_username}" if tenant.bot_username else tenant.slug
        return f"botfleet: {plan['name']}, {plan['period_days']} d, {who}"[:128]

    @staticmethod
    def _metadata(payment: asyncpg.Record) -> dict[str, str]:
        return {
            "tenant_id": str(payment["tenant_id"]),
            "payment_id": str(payment["id"]),
            "purpose": payment["purpose"],
        }

    def _receipt(self, payment: asyncpg.Record) -> Receipt | None:
        """The payment's receipt, built from its row alone: a resend with the same idempotence key
        sends the same body."""
        return self.receipts.build(
            description=payment["description"],
            amount=payment["amount"],
            currency=payment["currency"].strip(),
            contact=Contact.from_dict((payment["metadata"] or {}).get("receipt")),
        )

    async def _submit(
        self, payment: asyncpg.Record, *, tenant: Tenant, plan: asyncpg.Record
    ) -> Checkout:
        """Send a committed payment row to YooKassa (or reuse its earlier answer)."""
        if payment["status"] == "pending" and payment["confirmation_url"]:
            return self._checkout(
                payment, tenant=tenant, plan=plan, url=payment["confirmation_url"]
            )
        try:
            remote = await self._provider.create_payment(
                idempotence_key=payment["idempotence_key"],
                amount=payment["amount"],
                currency=payment["currency"].strip(),
                description=payment["description"],
                metadata=self._metadata(payment),
                return_url=self._config.return_url,
                save_payment_method=payment["save_payment_method"],
                receipt=self._receipt(payment),
            )
        except ProviderRejected as exc:
            await payment_repo.store_provider_error(self._pool, payment["id"], error=str(exc))
            await payment_repo.mark_canceled(
                self._pool, payment["id"], reason=f"rejected: {exc.code}"
            )
            log.error(
                "yookassa refused a payment",
                extra={"payment_id": str(payment["id"]), "code": exc.code},
            )
            raise
        except ProviderUnavailable as exc:
            await payment_repo.store_provider_error(self._pool, payment["id"], error=str(exc))
            log.warning("yookassa unavailable", extra={"payment_id": str(payment["id"])})
            raise
        await payment_repo.store_provider_result(
            self._pool,
            payment["id"],
            provider_payment_id=remote.id,
            status=_row_status(remote.status),
            confirmation_url=remote.confirmation_url,
        )
        if not remote.confirmation_url:
            raise ProviderUnavailable("YooKassa returned no confirmation URL for the payment")
        log.info(
            "checkout started",
            extra={"payment_id": str(payment["id"]), "tenant": tenant.slug},
        )
        return self._checkout(payment, tenant=tenant, plan=plan, url=remote.confirmation_url)

    @staticmethod
    def _checkout(
        payment: asyncpg.Record, *, tenant: Tenant, plan: asyncpg.Record, url: str
    ) -> Checkout:
        return Checkout(
            payment_id=payment["id"],
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            confirmation_url=url,
            amount=payment["amount"],
            currency=payment["currency"].strip(),
            plan_name=plan["name"],
            plan_translations=plan["translations"],
        )


def _row_status(provider_status: str) -> str:
    """Our row's status for a fresh provider answer (final states are set when applied)."""
    return provider_status if provider_status in ("pending", "waiting_for_capture") else "pending"
