r"""Who is told what, following the notification matrix (nobody is told of their own action).

| event                 | by       | customer                  | owners (except the actor) |
|-----------------------|----------|---------------------------|---------------------------|
| booking created       | anyone   | (sees the confirmation)*  | new booking (+ confirm)** |
| booking confirmed     | owner    | confirmed                 | —                         |
| booking cancelled     | customer | —                         | cancelled                 |
| booking cancelled     | owner    | cancelled, with reason    | cancelled                 |
| booking rescheduled   | customer | —                         | moved                     |
| booking rescheduled   | owner    | moved                     | moved                     |
| booking ended         | system   | —                         | card: came / no-show      |
| time freed            | system   | waitlisted: a time is free| —                         |
| reminder due          | system   | reminder (I'll come / cancel / reschedule) | —        |
| unconfirmed, released | system   | released                  | cancelled                 |

\* durable: if the checkout could not show it (the database refused after the commit), the
confirmation (``customer_booked``) is sent later by the background loop. \*\* durable, and to the
booked staff member too when their Telegram account is linked (phone cut to its last digits, no
buttons): armed on the booking in its transaction (migration 0070,
:class:`~tenant_bot.booking.notices.NoticeOutbox`) and sent by the background loop, once per
recipient (:meth:`Notifier.new_booking_notice`), never from a handler.

Every notice sent while handling an update is sent at most once: a Redis ``SET NX`` key per (event,
booking, version) guards against double taps and retried updates. Customers hear their own language
(the one stored with them); owners hear theirs: the language they chose in the bot, else the one
their Telegram app last reported (:class:`~tenant_bot.middlewares.locale.LocaleStore`), else the
tenant's default.

Every notice is a model of :mod:`schemas.notices` (one per kind), built here from the booking's
:func:`~tenant_bot.views.facts` in the recipient's locale and rendered by :meth:`Notifier.render`
with its kind's template and the model's values only (``tests/tenant_bot/test_notice_contract.py``).
A model that cannot be built (a value missing) is a render fault like any other.

Nothing here raises for one message's faults (a text that cannot render, a chat Telegram refuses, a
timeout): each recipient's outcome is a :class:`~tenant_bot.delivery.Delivery`, and one failed
recipient never keeps the message from the others. Notices sent from handlers are not retried; their
failures are counted and logged once (:class:`~tenant_bot.delivery.DeliveryTally`). Reminders and
"did they come?" cards return their outcome to the background loop, which retries passing faults
with a backoff and sets the others aside in the database.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from redis.asyncio import Redis
from redis.exceptions import RedisError

from schemas.notices import (
    BookingNotice,
    CompletionCard,
    CustomerBooked,
    CustomerCancelled,
    CustomerConfirmed,
    CustomerMoved,
    CustomerReleased,
    Notice,
    OwnerCancelled,
    OwnerMoved,
    OwnerNewBooking,
    Reminder,
    WaitlistFree,
)
from tenant_bot.booking.errors import StorageUnavailable
from tenant_bot.booking.models import (
    Booking,
    BookingDetails,
    BookingStatus,
    BusinessSettings,
    ClaimedReminder,
    Clock,
    WaitlistEntry,
    utc_now,
)
from tenant_bot.booking.notices import ClaimedNotice
from tenant_bot.booking.waitlist import WaitlistService
from tenant_bot.callbacks import Attend, Menu, MyBooking, OwnerBooking
from tenant_bot.courier import Courier, Message
from tenant_bot.delivery import Delivery, DeliveryTally, Outcome
from tenant_bot.keyboards import button
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.texts import BotTexts, pick_locale
from tenant_bot.views import facts, phone_ending

log = logging.getLogger(__name__)

ONCE_TTL_SECONDS = 14 * 24 * 3600

OWNER_NOTICE = "owner_notice"
CUSTOMER_NOTICE = "customer_notice"
WAITLIST_NOTICE = "waitlist_notice"
REMINDER = "reminder"
STAFF_NOTICE = "staff_notice"
COMPLETION_CARD = "completion_card"

BookingNoticeT = TypeVar("BookingNoticeT", bound=BookingNotice)


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
        tally: DeliveryTally | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.courier = Courier(bot, redis=redis, prefix=prefix, tally=tally)
        self.redis = redis
        self.prefix = prefix
        self.texts = texts
        self.locales = locales
        self.owner_ids = list(owner_ids)
        self.waitlist = waitlist
        self.clock = clock

    @property
    def tally(self) -> DeliveryTally:
        """Items set aside and passing failures, per kind, since the process started."""
        return self.courier.tally

    async def once(self, key: str) -> bool:
        """True the first time ``key`` is seen (Redis down: True — better twice than never)."""
        try:
            return bool(
                await self.redis.set(f"{self.prefix}sent:{key}", 1, nx=True, ex=ONCE_TTL_SECONDS)
            )
        except RedisError:
            return True

    async def send(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> bool:
        """Send one message; False if it could not be delivered."""
        return (await self.courier.deliver(chat_id, text, markup)).ok

    async def owner_locale(self, owner_id: int) -> str:
        """The owner's language: chosen in the bot, else their Telegram app's, else the default."""
        default = self.texts.default_locale
        try:
            chosen, seen = await self.locales.preferences(owner_id)
        except RedisError:
            return default
        if chosen in self.texts.locales:
            return chosen
        return pick_locale(seen, default)

    def _customer_locale(self, locale: str | None) -> str:
        return locale if locale in self.texts.locales else self.texts.default_locale

    def render(self, locale: str, notice: Notice) -> str:
        """A notice's text: its kind's template filled with the model's values, nothing else."""
        return self.texts(locale, notice.template(), **notice.values())

    def _booking_notice(
        self,
        model: type[BookingNoticeT],
        details: BookingDetails,
        settings: BusinessSettings,
        locale: str,
        **extra: str,
    ) -> BookingNoticeT:
        return model.of(facts(self.texts, locale, details, settings), **extra)

    async def _to_owners(
        self,
        details: BookingDetails,
        *,
        actor_id: int | None,
        notice: Callable[[str], Notice],
        card: bool = False,
    ) -> None:
        """One notice per owner (but the actor), each in the owner's language and on its own."""

        def render(locale: str) -> Message:
            markup = owner_card(self.texts, locale, details, now=self.clock()) if card else None
            return self.render(locale, notice(locale)), markup

        for owner in self.owner_ids:
            if owner == actor_id:
                continue
            locale = await self.owner_locale(owner)
            await self.courier.one_shot(
                OWNER_NOTICE, details.booking.id, owner, functools.partial(render, locale)
            )

    async def _to_customer(self, notice: Callable[[str], Notice], details: BookingDetails) -> None:
        if details.customer_telegram_id is None:  # booked by phone or at the door: no chat
            return
        chat_id = details.customer_telegram_id
        locale = self._customer_locale(details.customer_locale)

        def render() -> Message:
            markup = InlineKeyboardMarkup(
                inline_keyboard=[[button(self.texts(locale, "btn_my"), Menu(action="my").pack())]]
            )
            return self.render(locale, notice(locale)), markup

        await self.courier.one_shot(CUSTOMER_NOTICE, details.booking.id, chat_id, render)

    def _shown_key(self, booking_id: int) -> str:
        return f"{self.prefix}shown:booked:{booking_id}"

    async def mark_shown(self, booking_id: int) -> None:
        """The checkout showed the customer their booking: its durable copy is not sent (Redis
        down: it will be; a confirmation twice is better than none)."""
        try:
            await self.redis.set(self._shown_key(booking_id), 1, ex=ONCE_TTL_SECONDS)
        except RedisError as exc:
            log.warning("cannot mark a booking shown", extra={"error": type(exc).__name__})

    async def was_shown(self, booking_id: int) -> bool:
        """Whether the checkout showed the customer this booking (Redis down: False)."""
        try:
            # GET: the tenant's Redis ACL allows the bot's commands only (fleet.data_plane)
            return await self.redis.get(self._shown_key(booking_id)) is not None
        except RedisError:
            return False

    async def new_booking_notice(
        self, notice: ClaimedNotice, *, settings: BusinessSettings
    ) -> Delivery:
        """One durable notice of a new booking to one recipient (the background loop settles it):
        an owner's card in the owner's language; the booked staff member's notice in theirs, with
        the customer's phone cut to its last digits and no buttons; the customer's confirmation in
        the customer's language, with "My bookings"."""
        details = notice.details
        if notice.role == "customer":
            locale = self._customer_locale(details.customer_locale)

            def customer() -> Message:
                text = self.render(
                    locale, self._booking_notice(CustomerBooked, details, settings, locale)
                )
                markup = InlineKeyboardMarkup(
                    inline_keyboard=[
                        [button(self.texts(locale, "btn_my"), Menu(action="my").pack())]
                    ]
                )
                return text, markup

            return await self.courier.attempt(notice.chat_id, customer)
        locale = await self.owner_locale(notice.chat_id)
        staff = notice.role == "staff"

        def render() -> Message:
            values = facts(self.texts, locale, details, settings)
            if staff:
                values = values.model_copy(update={"phone": phone_ending(values.phone)})
                return self.render(locale, OwnerNewBooking.of(values)), None
            card = owner_card(self.texts, locale, details, now=self.clock())
            return self.render(locale, OwnerNewBooking.of(values)), card

        return await self.courier.attempt(notice.chat_id, render)

    async def booking_confirmed(
        self, details: BookingDetails, *, settings: BusinessSettings
    ) -> None:
        if await self.once(f"confirmed:{details.booking.id}"):
            await self._to_customer(
                functools.partial(self._booking_notice, CustomerConfirmed, details, settings),
                details,
            )

    async def booking_cancelled(
        self,
        details: BookingDetails,
        *,
        by: str,
        settings: BusinessSettings,
        actor_id: int | None = None,
    ) -> None:
        if not await self.once(f"cancelled:{details.booking.id}"):
            return
        reason = details.booking.cancel_reason or ""
        to_owners = functools.partial(
            self._booking_notice, OwnerCancelled, details, settings, reason=reason
        )
        if by == "customer":
            await self._to_owners(details, actor_id=details.customer_telegram_id, notice=to_owners)
            return
        await self._to_customer(
            functools.partial(
                self._booking_notice, CustomerCancelled, details, settings, reason=reason
            ),
            details,
        )
        await self._to_owners(details, actor_id=actor_id, notice=to_owners)

    async def booking_rescheduled(
        self,
        details: BookingDetails,
        *,
        old_start: datetime,
        by: str,
        settings: BusinessSettings,
        actor_id: int | None = None,
    ) -> None:
        key = f"moved:{details.booking.id}:{int(details.booking.starts_at.timestamp())}:{int(old_start.timestamp())}"
        if not await self.once(key):
            return

        def moved(model: type[BookingNoticeT], locale: str) -> BookingNoticeT:
            old_when = self.texts.when(locale, old_start, settings.zone)
            return self._booking_notice(model, details, settings, locale, old_when=old_when)

        if by != "customer":
            await self._to_customer(functools.partial(moved, CustomerMoved), details)
        actor = details.customer_telegram_id if by == "customer" else actor_id
        await self._to_owners(
            details, actor_id=actor, notice=functools.partial(moved, OwnerMoved), card=True
        )

    async def offer_freed_time(self, freed: Booking, *, settings: BusinessSettings) -> int:
        """Tell waitlisted customers that ``freed``'s time is available; returns how many were told.

        Each wish is told on its own: a customer who cannot be told (blocked the bot, chat gone, a
        text that cannot render) has the wish marked ``failed`` and is never offered times again,
        while the others are still told. A database outage while picking who to tell is logged and
        tells nobody (the cancellation that freed the time has already succeeded).
        """
        try:
            candidates = await self.waitlist.candidates_for(freed)
        except StorageUnavailable as exc:
            self.tally.deferred(WAITLIST_NOTICE, freed.id, f"{type(exc).__name__}: {exc}")
            return 0
        told = 0
        for entry in candidates:
            render = self._waitlist_render(entry, self._customer_locale(entry.customer_locale))
            result = await self.courier.one_shot(
                WAITLIST_NOTICE, entry.id, entry.customer_telegram_id, render
            )
            if result.outcome is Outcome.FAILED:
                try:
                    await self.waitlist.mark_failed(entry.id, error=result.error or "failed")
                except StorageUnavailable:
                    log.warning("cannot mark a waitlist wish failed", extra={"item_id": entry.id})
            told += result.ok
        return told

    def _waitlist_render(self, entry: WaitlistEntry, locale: str) -> Callable[[], Message]:
        def render() -> Message:
            text = self.render(locale, WaitlistFree(day=self.texts.day(locale, entry.day)))
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [button(self.texts(locale, "btn_book"), Menu(action="book").pack())]
                ]
            )
            return text, markup

        return render

    async def remind(self, reminder: ClaimedReminder, *, settings: BusinessSettings) -> Delivery:
        """Send a reminder; a failure for good is counted and logged here (the caller records it)."""
        details = reminder.details
        locale = self._customer_locale(details.customer_locale)

        def render() -> Message:
            notice = self._booking_notice(Reminder, details, settings, locale)
            return self.render(locale, notice), reminder_buttons(
                self.texts, locale, details.booking.id, attend=True
            )

        if details.customer_telegram_id is None:  # never armed for them; set aside if it was
            result = Delivery(Outcome.FAILED, "the customer has no chat with the bot")
        else:
            result = await self.courier.attempt(details.customer_telegram_id, render)
        if result.outcome is Outcome.FAILED:
            self.tally.set_aside(REMINDER, reminder.id, result.error)
        return result

    async def booking_released(
        self, details: BookingDetails, *, settings: BusinessSettings
    ) -> None:
        """An unconfirmed booking was released: its customer and the owners are told (once)."""
        if not await self.once(f"released:{details.booking.id}"):
            return
        await self._to_customer(
            functools.partial(self._booking_notice, CustomerReleased, details, settings), details
        )

        def to_owners(locale: str) -> OwnerCancelled:
            reason = self.texts(locale, "release_reason")
            return self._booking_notice(OwnerCancelled, details, settings, locale, reason=reason)

        await self._to_owners(details, actor_id=None, notice=to_owners)

    async def completion_card(
        self, details: BookingDetails, *, settings: BusinessSettings
    ) -> Delivery:
        """Ask the owners whether the customer came (their answer marks done / no-show).

        ``sent`` once every owner is settled and at least one has the card; ``retry`` while some owner
        failed for a passing reason (a retry reaches only the owners still without it); ``failed``
        when no owner can ever get it. An owner who can never get it is counted and logged once.
        """
        booking_id = details.booking.id
        item = f"card:{booking_id}"
        settled = await self.courier.settled(item, self.owner_ids)
        sent = any(value == Outcome.SENT.value for value in settled.values())
        retry: Delivery | None = None
        failed: Delivery | None = None
        for owner in self.owner_ids:
            if owner in settled:
                continue
            locale = await self.owner_locale(owner)
            render = self._completion_render(details, settings, locale)
            result = await self.courier.attempt(owner, render)
            if result.outcome is Outcome.RETRY:
                retry = retry or result
                continue
            await self.courier.settle(item, owner, result.outcome)
            if result.outcome is Outcome.FAILED:
                self.tally.set_aside(COMPLETION_CARD, booking_id, result.error)
                failed = result
            sent = sent or result.ok
        if retry is not None:
            return retry
        if sent or failed is None:
            return Delivery.sent()
        return failed

    def _completion_render(
        self, details: BookingDetails, settings: BusinessSettings, locale: str
    ) -> Callable[[], Message]:
        def render() -> Message:
            notice = self._booking_notice(CompletionCard, details, settings, locale)
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
            return self.render(locale, notice), markup

        return render


def reminder_buttons(
    texts: BotTexts, locale: str, booking_id: int, *, attend: bool
) -> InlineKeyboardMarkup:
    """Under a reminder: "I'll come" (while not answered), "Cancel" and "Reschedule" (the
    customer's usual flows, with their rules), and "My bookings"."""
    rows = []
    if attend:
        rows.append([button(texts(locale, "btn_attend"), Attend(booking_id=booking_id).pack())])
    rows.append(
        [
            button(
                texts(locale, "btn_remind_cancel"),
                MyBooking(booking_id=booking_id, action="c").pack(),
            ),
            button(
                texts(locale, "btn_remind_move"),
                MyBooking(booking_id=booking_id, action="r").pack(),
            ),
        ]
    )
    rows.append([button(texts(locale, "btn_my"), Menu(action="my").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


CardData = Callable[[int, str], str]
"""The callback data of a card's button from the booking id and the action (``ok``, ``m``, ``x``,
``d``, ``n`` as in :class:`~tenant_bot.callbacks.OwnerBooking`)."""


def _owner_data(booking_id: int, action: str) -> str:
    return OwnerBooking(booking_id=booking_id, action=action).pack()


OWNER_ACTIONS = frozenset({"ok", "m", "x", "d", "n"})


def owner_card(
    texts: BotTexts,
    locale: str,
    details: BookingDetails,
    *,
    now: datetime,
    actions: frozenset[str] = OWNER_ACTIONS,
    data: CardData = _owner_data,
) -> InlineKeyboardMarkup:
    """The owner's buttons for a booking in its current status; "came" / "did not come" only
    once it has started (:meth:`~tenant_bot.booking.models.Booking.awaits_outcome`). A staff
    member's card is the same rules with fewer ``actions`` and their own callback ``data``."""
    booking_id = details.booking.id
    status = details.booking.status

    def row(*pairs: tuple[str, str]) -> list[InlineKeyboardButton]:
        return [button(texts(locale, key), data(booking_id, action)) for key, action in pairs]

    rows = []
    if status is BookingStatus.PENDING and "ok" in actions:
        rows.append(row(("btn_confirm_booking", "ok")))
    if status.active and "m" in actions:
        rows.append(row(("btn_move", "m")))
    if status.active and "x" in actions:
        rows.append(row(("btn_cancel_booking", "x")))
    if details.booking.awaits_outcome(now) and {"d", "n"} <= actions:
        rows.append(row(("btn_came", "d"), ("btn_no_show", "n")))
    return InlineKeyboardMarkup(inline_keyboard=rows)
