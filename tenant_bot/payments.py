"""The bot's side of deposits (issue 19): the provider token, invoices, payments, refunds due.

The booking core decides (holds, pre-checkout checks, payments applied once, the cancellation
policy: :mod:`tenant_bot.booking.deposits`); this module speaks Telegram Payments for it:

- The provider token the owner pastes (BotFather -> Payments) is stored encrypted
  (:class:`TokenVault`: ``v1:<key id>:<fernet token>``, the key derived from the bot's own token,
  which the tenant's database never holds). A bot token rotated since makes the stored token
  unreadable: deposits stop (bookings go on without) and the owner's payment screen asks for the
  token again.
- :meth:`Payments.send_invoice` sends the deposit's invoice (``sendInvoice``); with receipts on,
  ``provider_data`` carries the 54-FZ receipt in YooKassa's format and the customer's phone is asked
  and passed to the provider (the receipt goes to it).
- :meth:`Payments.pre_checkout` answers ``pre_checkout_query``: one row-locked query, bounded by
  :data:`PRE_CHECKOUT_BUDGET_SECONDS`; a check that cannot finish in time refuses (the customer can
  pay again), since Telegram fails a payment unanswered after 10 s anyway.
- :meth:`Payments.paid` applies ``successful_payment`` (once per Telegram charge id) and tells the
  customer and the owners; a payment that came after its hold ended is owed back in full.
- :meth:`Payments.refund_due_notice` tells the owners what to refund, to whom and where.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)

from tenant_bot.booking import BookingCore
from tenant_bot.booking.deposits import to_minor
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import (
    Actor,
    Booking,
    BookingDetails,
    BusinessSettings,
    DepositKind,
    DepositRule,
    PaymentSettings,
    PaymentState,
    Service,
)
from tenant_bot.calendar_files import send_booking_file
from tenant_bot.callbacks import Refund
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.notifications import Notifier
from tenant_bot.texts import BotTexts
from tenant_bot.views import booking_facts

if TYPE_CHECKING:
    from kit.secrets import SecretBox

log = logging.getLogger(__name__)

PAYLOAD_PREFIX = "dep:"
PRE_CHECKOUT_BUDGET_SECONDS = 7.0  # of Telegram's 10
REFUND_NOTICE = "refund_due"
_PURPOSE = "botfleet payment provider token v1"


def _same(
    message: tuple[str, InlineKeyboardMarkup | None],
) -> tuple[str, InlineKeyboardMarkup | None]:
    return message


def payment_line(texts: BotTexts, locale: str, booking: Booking) -> str:
    """The booking card's money line: unpaid (held until), paid, refund due / made ("" for none)."""
    if booking.payment is PaymentState.NONE:
        return ""
    money = functools.partial(texts.money, currency=booking.currency)
    return "\n" + texts(
        locale,
        "pay_card_line",
        state=booking.payment.value,
        deposit=money(booking.deposit),
        paid=money(booking.paid_amount or Decimal(0)),
        refund=money(booking.refund_due) if booking.refund_due else "",
        refunded=booking.refunded_at is not None,
    )


class TokenVault:
    """Encrypts the payment provider token with a key derived from the bot token.

    The key (and ``cryptography``, ~7 MB of a bot's memory) is made on first use: most bots take no
    online payments and never need it; one that does makes it at start-up, in the hold loop's first
    pass (:meth:`Payments.prepare`), not on a customer's tap.
    """

    def __init__(self, bot_token: str) -> None:
        self._bot_token = bot_token
        self._box: SecretBox | None = None

    @property
    def ready(self) -> bool:
        """Whether the key is made (sealing or opening needs no import any more)."""
        return self._box is not None

    def prepare(self) -> SecretBox:
        """The box holding the key, made on the first call."""
        if self._box is None:
            from kit.secrets import SecretBox, derived_key

            self._box = SecretBox([derived_key(self._bot_token, purpose=_PURPOSE)])
        return self._box

    def seal(self, provider_token: str) -> str:
        return self.prepare().encrypt(provider_token)

    def open(self, sealed: str) -> str | None:
        """The token, or None when it cannot be read (the bot token changed since)."""
        from kit.secrets import SecretUnreadable

        try:
            return self.prepare().decrypt(sealed)
        except SecretUnreadable as exc:
            log.warning("payment provider token unreadable", extra={"reason": str(exc)})
            return None


def payload_of(booking_id: int) -> str:
    return f"{PAYLOAD_PREFIX}{booking_id}"


def booking_of(payload: str) -> int | None:
    """The booking an invoice payload names (None: not one of ours)."""
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    rest = payload[len(PAYLOAD_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def receipt(
    details: BookingDetails, settings: PaymentSettings, *, amount: Decimal
) -> dict[str, object]:
    """The 54-FZ receipt of a deposit, in YooKassa's ``provider_data`` format."""
    booking = details.booking
    full = amount >= booking.price
    return {
        "receipt": {
            "items": [
                {
                    "description": details.service_name[:128],
                    "quantity": "1.00",
                    "amount": {"value": f"{amount:.2f}", "currency": booking.currency},
                    "vat_code": settings.receipt_vat_code,
                    "payment_mode": "full_prepayment" if full else "partial_prepayment",
                    "payment_subject": "service",
                }
            ]
        }
    }


class Payments:
    """Invoices, pre-checkout answers, payments and refund notices for one bot."""

    def __init__(
        self,
        *,
        core: BookingCore,
        bot: Bot,
        bot_token: str,
        texts: BotTexts,
        notifier: Notifier,
    ) -> None:
        self.core = core
        self.bot = bot
        self.vault = TokenVault(bot_token)
        self.texts = texts
        self.notifier = notifier
        # told the end of each hold taken (the hold loop wakes by then)
        self.on_hold: Callable[[datetime], None] | None = None

    def prepare(self, settings: PaymentSettings) -> None:
        """Ready the token's key when the owner takes payments (the hold loop's first pass calls
        this), so no customer's tap waits for it."""
        if settings.provider_token is not None:
            self.vault.prepare()

    async def provider_token(self, settings: PaymentSettings | None = None) -> str | None:
        settings = settings or await self.core.deposits.settings()
        if settings.provider_token is None:
            return None
        return self.vault.open(settings.provider_token)

    def policy(self, settings: PaymentSettings, *, locale: str) -> str:
        """The cancellation policy as the customer reads it."""
        return self.texts(
            locale,
            "pay_policy",
            free_hours=settings.free_cancel_hours,
            keep_percent=settings.late_keep_percent,
        )

    async def terms_before_paying(
        self, service: Service, *, locale: str, customer_id: int | None = None
    ) -> str:
        """The deposit and the policy for the booking summary ("" when none is asked; no query
        then, unless the owner's no-show rule asks deposits: the summary's hot path stays free of
        the database)."""
        override = None
        if service.deposit_rule.kind is DepositKind.NONE:
            if customer_id is None or not await self.core.no_shows.requires_deposit(customer_id):
                return ""
            override = DepositRule.full()  # what book() asks of such a customer
        settings = await self.core.deposits.settings()
        amount = self.core.deposits.quote(service, settings, override=override)
        if not amount or await self.provider_token(settings) is None:
            return ""
        return "\n\n" + self.texts(
            locale,
            "pay_terms",
            deposit=self.texts.money(amount, service.currency),
            full=amount >= service.price,
            hold_minutes=settings.hold_minutes,
            policy=self.policy(settings, locale=locale),
        )

    async def terms_before_cancelling(self, booking: Booking, *, locale: str) -> str:
        """What cancelling now does to a paid deposit ("" when nothing was paid)."""
        if booking.payment is not PaymentState.PAID:
            return ""
        terms = await self.core.deposits.terms(booking)
        return "\n\n" + self.texts(
            locale,
            "pay_cancel_terms",
            refund=self.texts.money(terms.refund, booking.currency),
            kept=self.texts.money(terms.kept, booking.currency),
            free=terms.free,
        )

    def deposit_after_cancel(self, booking: Booking, *, locale: str) -> str:
        """What became of the deposit, told to the customer right after cancelling."""
        if booking.payment is not PaymentState.PAID:
            return ""
        refund = booking.refund_due or Decimal(0)
        return "\n\n" + self.texts(
            locale,
            "pay_after_cancel",
            refund=self.texts.money(refund, booking.currency),
            kept=self.texts.money((booking.paid_amount or Decimal(0)) - refund, booking.currency),
        )

    async def hold_taken(
        self,
        callback: CallbackQuery,
        details: BookingDetails,
        *,
        settings: BusinessSettings,
        locale: str,
    ) -> None:
        """The seat is held: say until when, and send the invoice (once per booking). An invoice
        that cannot be sent ends the hold at once, so the seat is not kept for nothing."""
        booking = details.booking
        until = booking.hold_until or booking.created_at
        if self.on_hold is not None:
            self.on_hold(until)
        text = self.texts(
            locale,
            "pay_held",
            deposit=self.texts.money(booking.deposit, booking.currency),
            until=f"{until.astimezone(settings.zone):%H:%M}",
            **booking_facts(self.texts, locale, details, settings),
        )
        await show(callback, text)
        if not await self.notifier.once(f"invoice:{booking.id}"):
            return
        if await self.send_invoice(details, locale=locale, settings=settings):
            return
        await self.core.bookings.cancel(booking.id, actor=Actor.system(), reason="invoice not sent")
        await show(callback, self.texts(locale, "pay_unavailable"))

    async def send_invoice(
        self,
        details: BookingDetails,
        *,
        locale: str,
        settings: BusinessSettings | None = None,
    ) -> bool:
        """The deposit's invoice to the customer; False when it cannot be sent."""
        booking = details.booking
        if details.customer_telegram_id is None:  # booked by the owner, no chat: nowhere to send
            log.warning(
                "deposit asked of a customer without a chat", extra={"booking_id": booking.id}
            )
            return False
        payment = await self.core.deposits.settings()
        token = await self.provider_token(payment)
        if token is None:
            log.warning(
                "deposit asked without a readable provider token", extra={"booking_id": booking.id}
            )
            return False
        catalogue = settings or await self.core.catalogue.get_settings()
        amount = booking.deposit
        title_key = "pay_invoice_title_full" if amount >= booking.price else "pay_invoice_title"
        try:
            await self.bot.send_invoice(
                details.customer_telegram_id,
                title=self.texts(locale, title_key)[:32],
                description=self.texts(
                    locale,
                    "pay_invoice_description",
                    service=details.service_name,
                    when=self.texts.when(locale, booking.starts_at, catalogue.zone),
                )[:255],
                payload=payload_of(booking.id),
                provider_token=token,
                currency=booking.currency,
                prices=[
                    LabeledPrice(label=self.texts(locale, title_key)[:32], amount=to_minor(amount))
                ],
                provider_data=json.dumps(receipt(details, payment, amount=amount))
                if payment.receipts
                else None,
                need_phone_number=payment.receipts or None,
                send_phone_number_to_provider=payment.receipts or None,
            )
        except Exception as exc:  # Telegram refused (a bad provider token) or is away
            log.error(
                "invoice not sent",
                extra={"booking_id": booking.id, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            return False
        return True

    async def pre_checkout(self, query: PreCheckoutQuery, *, locale: str) -> None:
        """Approve the payment only while its booking's hold is valid and the invoice matches."""
        booking_id = booking_of(query.invoice_payload)
        reason = "gone"
        if booking_id is not None:
            try:
                async with asyncio.timeout(PRE_CHECKOUT_BUDGET_SECONDS):
                    reason = await self.core.deposits.check_payable(
                        booking_id, amount_minor=query.total_amount, currency=query.currency
                    )
            except (TimeoutError, BookingError) as exc:
                log.warning(
                    "pre-checkout check failed",
                    extra={"booking_id": booking_id, "error": type(exc).__name__},
                )
                reason = "busy"
        if reason == "ok":
            await query.answer(ok=True)
            return
        log.info("pre-checkout refused", extra={"booking_id": booking_id, "reason": reason})
        await query.answer(ok=False, error_message=self.texts(locale, f"pay_refused_{reason}"))

    async def paid(self, message: Message, *, locale: str) -> None:
        """Apply a ``successful_payment``; repeats change nothing and say nothing."""
        payment = message.successful_payment
        assert payment is not None
        booking_id = booking_of(payment.invoice_payload)
        if booking_id is None:
            log.warning("payment for an unknown invoice payload")
            return
        result = await self.core.deposits.record_payment(
            booking_id,
            amount_minor=payment.total_amount,
            currency=payment.currency,
            telegram_charge_id=payment.telegram_payment_charge_id,
            provider_charge_id=payment.provider_payment_charge_id,
        )
        if result.outcome == "repeat":
            return
        details = await self.core.bookings.get(booking_id)
        settings = await self.core.catalogue.get_settings()
        facts = booking_facts(self.texts, locale, details, settings)
        paid = self.texts.money(result.booking.paid_amount or Decimal(0), details.booking.currency)
        if result.outcome == "late":
            await message.answer(self.texts(locale, "pay_late", paid=paid, **facts))
            await self.refund_due_notice(details)
            return
        key = "pay_confirmed" if details.booking.status.value == "confirmed" else "pay_pending"
        await message.answer(self.texts(locale, key, paid=paid, **facts))
        # the owners' new-booking notices were armed with the payment (durable, migration 0070)
        await send_booking_file(self.notifier, self.core, details, settings)  # once confirmed

    async def refund_due_notice(self, details: BookingDetails) -> None:
        """Tell the owners exactly what to refund where (once per booking and amount)."""
        booking = details.booking
        if not booking.refund_due or booking.refunded_at is not None:
            return
        if not await self.notifier.once(f"refund:{booking.id}:{booking.refund_due}"):
            return
        settings = await self.core.catalogue.get_settings()
        for owner in self.notifier.owner_ids:
            locale = await self.notifier.owner_locale(owner)
            text = self.refund_text(details, locale=locale, settings=settings)
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        button(
                            self.texts(locale, "btn_refund_made"),
                            Refund(booking_id=booking.id).pack(),
                        )
                    ]
                ]
            )
            message: tuple[str, InlineKeyboardMarkup | None] = (text, markup)
            await self.notifier.courier.one_shot(
                REFUND_NOTICE, booking.id, owner, functools.partial(_same, message)
            )

    def refund_text(
        self, details: BookingDetails, *, locale: str, settings: BusinessSettings
    ) -> str:
        """What to refund, to whom, for what, and where (the provider's payment id)."""
        booking = details.booking
        return self.texts(
            locale,
            "pay_refund_due",
            amount=self.texts.money(booking.refund_due or Decimal(0), booking.currency),
            paid=self.texts.money(booking.paid_amount or Decimal(0), booking.currency),
            customer=details.customer_name,
            phone=details.customer_phone or "",
            service=details.service_name,
            when=self.texts.when(locale, booking.starts_at, settings.zone),
            charge=booking.provider_charge_id or "",
            booking_id=booking.id,
        )

    async def hold_expired(self, booking: Booking) -> None:
        """Tell the customer their unpaid hold ended (once)."""
        if not await self.notifier.once(f"hold:{booking.id}"):
            return
        details = await self.core.bookings.get(booking.id)
        if details.customer_telegram_id is None:  # no chat with the bot
            return
        chat_id = details.customer_telegram_id
        settings = await self.core.catalogue.get_settings()
        locale = details.customer_locale or self.texts.default_locale
        if locale not in self.texts.locales:
            locale = self.texts.default_locale
        text = self.texts(
            locale,
            "pay_hold_expired",
            **booking_facts(self.texts, locale, details, settings),
        )
        await self.notifier.courier.one_shot(
            "hold_expired", booking.id, chat_id, lambda: (text, None)
        )
