"""Who is told what, following the notification matrix (nobody is told of their own action).

| event                 | by       | customer                  | owners (except the actor) |
|-----------------------|----------|---------------------------|---------------------------|
| booking created       | customer | (sees the confirmation)   | new booking (+ confirm)   |
| booking confirmed     | owner    | confirmed                 | —                         |
| booking cancelled     | customer | —                         | cancelled                 |
| booking cancelled     | owner    | cancelled, with reason    | cancelled                 |
| booking rescheduled   | customer | —                         | moved                     |
| booking rescheduled   | owner    | moved                     | moved                     |
| booking ended         | system   | —                         | card: came / no-show      |
| time freed            | system   | waitlisted: a time is free| —                         |
| reminder due          | system   | reminder                  | —                         |

Every notification is sent at most once: a Redis ``SET NX`` key per (event, booking, version) guards
against double taps and retried updates. A customer who blocked the bot is skipped quietly.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tenant_bot.booking.models import (
    Booking,
    BookingDetails,
    BookingStatus,
    ClaimedReminder,
    Settings,
)
from tenant_bot.booking.waitlist import WaitlistService
from tenant_bot.callbacks import Menu, OwnerBooking
from tenant_bot.keyboards import button
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.texts import BotTexts
from tenant_bot.views import booking_facts

log = logging.getLogger(__name__)

ONCE_TTL_SECONDS = 14 * 24 * 3600


class Notifier:
    """Sends the bot's unsolicited messages to customers and owners."""

    def __init__(
        self,
        bot: Bot,
        *,
        redis: Redis,
        prefix: str,
        texts: BotTexts,
        locales: LocaleStore,
        owner_ids: list[int],
        waitlist: WaitlistService,
    ) -> None:
        self.bot = bot
        self.redis = redis
        self.prefix = prefix
        self.texts = texts
        self.locales = locales
        self.owner_ids = list(owner_ids)
        self.waitlist = waitlist

    async def once(self, key: str) -> bool:
        """True the first time ``key`` is seen (Redis down: True — better twice than never)."""
        try:
            return bool(
                await self.redis.set(f"{self.prefix}sent:{key}", 1, nx=True, ex=ONCE_TTL_SECONDS)
            )
        except RedisError:
            return True

    async def deliver(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> str:
        """Send one message: ``sent``, ``blocked`` (the user blocked the bot: never retry) or
        ``failed`` (a Telegram error worth retrying later)."""
        for attempt in (1, 2):
            try:
                await self.bot.send_message(chat_id, text, reply_markup=markup)
                return "sent"
            except TelegramRetryAfter as exc:
                if attempt == 2:
                    break
                await asyncio.sleep(min(exc.retry_after, 30))
            except TelegramForbiddenError:
                log.info("recipient blocked the bot", extra={"chat_id": chat_id})
                return "blocked"
            except TelegramAPIError as exc:
                log.warning(
                    "notification failed", extra={"chat_id": chat_id, "error": type(exc).__name__}
                )
                return "failed"
        return "failed"

    async def send(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> bool:
        """Send one message; False if it could not be delivered."""
        return await self.deliver(chat_id, text, markup) == "sent"

    async def _owner_locale(self, owner_id: int) -> str:
        try:
            return await self.locales.get(owner_id) or self.texts.default_locale
        except RedisError:
            return self.texts.default_locale

    def _customer_locale(self, details: BookingDetails) -> str:
        locale = details.customer_locale
        return locale if locale in self.texts.locales else self.texts.default_locale

    async def _to_owners(
        self,
        key: str,
        details: BookingDetails,
        settings: Settings,
        *,
        actor_id: int | None,
        markup_for: str | None = None,
        **extra: str,
    ) -> None:
        for owner in self.owner_ids:
            if owner == actor_id:
                continue
            locale = await self._owner_locale(owner)
            facts = booking_facts(self.texts, locale, details, settings)
            markup = owner_card(self.texts, locale, details) if markup_for else None
            await self.send(owner, self.texts(locale, key, **facts, **extra), markup)

    async def _to_customer(
        self, key: str, details: BookingDetails, settings: Settings, **extra: str
    ) -> None:
        locale = self._customer_locale(details)
        facts = booking_facts(self.texts, locale, details, settings)
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[button(self.texts(locale, "btn_my"), Menu(action="my").pack())]]
        )
        await self.send(
            details.customer_telegram_id, self.texts(locale, key, **facts, **extra), markup
        )

    async def booking_created(
        self, details: BookingDetails, *, settings: Settings, actor_id: int | None = None
    ) -> None:
        if await self.once(f"new:{details.booking.id}"):
            await self._to_owners(
                "owner_new_booking",
                details,
                settings,
                actor_id=actor_id or details.customer_telegram_id,
                markup_for="card",
            )

    async def booking_confirmed(self, details: BookingDetails, *, settings: Settings) -> None:
        if await self.once(f"confirmed:{details.booking.id}"):
            await self._to_customer("customer_confirmed", details, settings)

    async def booking_cancelled(
        self, details: BookingDetails, *, by: str, settings: Settings, actor_id: int | None = None
    ) -> None:
        if not await self.once(f"cancelled:{details.booking.id}"):
            return
        reason = details.booking.cancel_reason or ""
        if by == "customer":
            await self._to_owners(
                "owner_cancelled",
                details,
                settings,
                actor_id=details.customer_telegram_id,
                reason=reason,
            )
            return
        await self._to_customer("customer_cancelled", details, settings, reason=reason)
        await self._to_owners(
            "owner_cancelled", details, settings, actor_id=actor_id, reason=reason
        )

    async def booking_rescheduled(
        self,
        details: BookingDetails,
        *,
        old_start: datetime,
        by: str,
        settings: Settings,
        actor_id: int | None = None,
    ) -> None:
        key = f"moved:{details.booking.id}:{int(details.booking.starts_at.timestamp())}:{int(old_start.timestamp())}"
        if not await self.once(key):
            return
        for_customer = by != "customer"
        locale_c = self._customer_locale(details)
        if for_customer:
            await self._to_customer(
                "customer_moved",
                details,
                settings,
                old_when=self.texts.when(locale_c, old_start, settings.zone),
            )
        for owner in self.owner_ids:
            if owner == (details.customer_telegram_id if by == "customer" else actor_id):
                continue
            locale = await self._owner_locale(owner)
            facts = booking_facts(self.texts, locale, details, settings)
            text = self.texts(
                locale,
                "owner_moved",
                **facts,
                old_when=self.texts.when(locale, old_start, settings.zone),
            )
            await self.send(owner, text, owner_card(self.texts, locale, details))

    async def offer_freed_time(self, freed: Booking, *, settings: Settings) -> int:
        """Tell waitlisted customers that ``freed``'s time is available; returns how many were told."""
        candidates = await self.waitlist.candidates_for(freed)
        told = 0
        for entry in candidates:
            locale = (
                entry.customer_locale
                if entry.customer_locale in self.texts.locales
                else self.texts.default_locale
            )
            text = self.texts(locale, "waitlist_free", day=self.texts.day(locale, entry.day))
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [button(self.texts(locale, "btn_book"), Menu(action="book").pack())]
                ]
            )
            told += await self.send(entry.customer_telegram_id, text, markup)
        return told

    async def remind(self, reminder: ClaimedReminder, *, settings: Settings) -> str:
        """Send a reminder; the :meth:`deliver` outcome."""
        details = reminder.details
        locale = self._customer_locale(details)
        facts = booking_facts(self.texts, locale, details, settings)
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[button(self.texts(locale, "btn_my"), Menu(action="my").pack())]]
        )
        text = self.texts(locale, "reminder", **facts)
        return await self.deliver(details.customer_telegram_id, text, markup)

    async def completion_card(self, details: BookingDetails, *, settings: Settings) -> None:
        """Ask the owners whether the customer came (their answer marks done / no-show)."""
        for owner in self.owner_ids:
            locale = await self._owner_locale(owner)
            facts = booking_facts(self.texts, locale, details, settings)
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        button(
                            self.texts(locale, "btn_came"),
                            OwnerBooking(booking_id=details.booking.id, action="d").pack(),
                        ),
                        button(
                            self.texts(locale, "btn_no_show"),
                            OwnerBooking(booking_id=details.booking.id, action="n").pack(),
                        ),
                    ]
                ]
            )
            await self.send(owner, self.texts(locale, "owner_did_they_come", **facts), markup)


def owner_card(texts: BotTexts, locale: str, details: BookingDetails) -> InlineKeyboardMarkup:
    """The owner's buttons for a booking in its current status."""
    booking_id = details.booking.id
    status = details.booking.status
    rows = []
    if status is BookingStatus.PENDING:
        rows.append(
            [
                button(
                    texts(locale, "btn_confirm_booking"),
                    OwnerBooking(booking_id=booking_id, action="ok").pack(),
                )
            ]
        )
    if status.active:
        rows.append(
            [
                button(
                    texts(locale, "btn_move"),
                    OwnerBooking(booking_id=booking_id, action="m").pack(),
                )
            ]
        )
        rows.append(
            [
                button(
                    texts(locale, "btn_cancel_booking"),
                    OwnerBooking(booking_id=booking_id, action="x").pack(),
                )
            ]
        )
    if status is BookingStatus.CONFIRMED:
        rows.append(
            [
                button(
                    texts(locale, "btn_came"),
                    OwnerBooking(booking_id=booking_id, action="d").pack(),
                ),
                button(
                    texts(locale, "btn_no_show"),
                    OwnerBooking(booking_id=booking_id, action="n").pack(),
                ),
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)
