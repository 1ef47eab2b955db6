"""The tenant bot's notices are a typed contract (``schemas/notices.py``).

A real bot runs against the Telegram emulator with two owners (one Russian, one English) and customers
speaking each language, and goes through everything that makes it speak unasked: bookings made,
confirmed, cancelled by the customer and by the owner (with and without a reason), moved by the
customer and by the owner, a due reminder, an ended booking's "did they come?" card, and a freed time
offered to the waitlist. Every notice is read back from the recipients' chats: every kind arrives in
every locale, in the recipient's language, with every value filled in (the templates run with
``StrictUndefined``; nothing renders ``None`` or a stray ``{{``), and none was set aside.

The catalogue checks make sure the contract cannot drift: every notice template of every locale
belongs to a registered kind, and each kind's model fields are exactly its template's arguments, so a
value a template needs is a value the producer must give.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import ValidationError

from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from schemas.notices import (
    NOTICES,
    BookingFacts,
    OwnerMoved,
    WaitlistFree,
    is_notice_template,
)
from schemas.runtime import TenantRuntime
from templates import LOCALES
from tenant_bot.app import run
from tenant_bot.booking.models import Actor, BookingDetails
from tenant_bot.callbacks import MyBooking, OwnerBooking, PickService
from tenant_bot.resources import BotResources
from tenant_bot.texts import BotTexts
from tests.support.chat_helpers import bot_view, say, settle

TEXTS = BotTexts(default_locale="en")
TUE, WED, THU, FRI, SAT = (date(2030, 1, d) for d in (8, 9, 10, 11, 12))

# How each kind's message starts, per locale: how a notice is told apart from the screens around it.
HEADLINES: dict[str, dict[str, str]] = {
    "owner_new_booking": {"en": r"🆕 New booking \(", "ru": r"🆕 Новая запись \("},
    "customer_booked": {
        "en": r"✅ Your booking went through \(",
        "ru": r"✅ Ваша запись оформлена \(",
    },
    "customer_confirmed": {
        "en": r"✅ Your booking is confirmed\.",
        "ru": r"✅ Ваша запись подтверждена\.",
    },
    "owner_cancelled": {"en": r"❌ Booking cancelled", "ru": r"❌ Запись отменена"},
    "customer_cancelled": {
        "en": r"❌ Your booking was cancelled by the business\.",
        "ru": r"❌ Ваша запись отменена\.",
    },
    "owner_moved": {"en": r"🔁 Booking moved from ", "ru": r"🔁 Запись перенесена с "},
    "customer_moved": {
        "en": r"🔁 Your booking was moved from ",
        "ru": r"🔁 Ваша запись перенесена с ",
    },
    "reminder": {"en": r"⏰ Reminder: you are booked\.", "ru": r"⏰ Напоминаем о записи\."},
    "customer_released": {
        "en": r"❌ Your booking was released ",
        "ru": r"❌ Ваша запись снята",
    },
    "owner_did_they_come": {"en": r"Did the customer come\?", "ru": r"Клиент пришёл\?"},
    "waitlist_free": {
        "en": r"🔔 A time has freed up on .+!",
        "ru": r"🔔 На .+ освободилось время!",
    },
}
LEFTOVERS = ("None", "{{", "}}", "{%", "%}", "Undefined")


def classify(text: str) -> tuple[str, str] | None:
    """(kind, locale) of a notice, or None for any other message."""
    for kind, by_locale in HEADLINES.items():
        for locale, pattern in by_locale.items():
            if re.match(pattern, text):
                return kind, locale
    return None


@dataclass
class Person:
    user: TelegramUser
    locale: str
    name: str


@dataclass
class Shop:
    """The running bot and everyone around it; remembers every bot message as first sent.

    Owners' notices turn into booking cards when tapped (the message is edited), so each message is
    recorded the first time it is seen unedited, and everyone's chat is recorded before every tap.
    """

    resources: BotResources
    tenant: Any
    clock: Any
    people: dict[str, Person]
    seen: dict[tuple[str, int], str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Person:
        try:
            return self.__dict__["people"][name]
        except KeyError:
            raise AttributeError(name) from None

    async def record(self) -> None:
        for name, person in self.people.items():
            for message in await person.user.messages():
                key = (name, message["message_id"])
                if message["from"] != "bot" or key in self.seen or message["edit_date"]:
                    continue
                self.seen[key] = message["text"] or message["caption"] or ""

    def notices(self, name: str) -> list[tuple[str, str, str]]:
        """(kind, locale, text) of every notice ``name`` received, oldest first."""
        found = []
        for (who, _), text in sorted(self.seen.items(), key=lambda item: item[0][1]):
            if who == name and (what := classify(text)) is not None:
                found.append((*what, text))
        return found

    async def expect(self, name: str, kind: str, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``name`` has received ``count`` notices of ``kind``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.record()
            got = [n for n in self.notices(name) if n[0] == kind]
            if len(got) >= count:
                return
            if loop.time() > deadline:
                tally = self.resources.notifier.tally.snapshot()
                raise TimeoutError(f"{name} got {len(got)} of {count} {kind!r}: {got}; {tally}")
            await asyncio.sleep(0.05)

    async def tap(
        self, person: Person, *, text: str | None = None, data: str | None = None
    ) -> dict[str, Any]:
        await self.record()
        before = await bot_view(person.user)
        await person.user.click(text, data=data)
        return await settle(person.user, before)

    async def wake(self, times: int = 3) -> None:
        for _ in range(times):
            self.resources.background.wake.set()
            await asyncio.sleep(0.3)

    async def booking_of(self, person: Person, day: date) -> BookingDetails:
        [details] = [
            d
            for d in await self.tenant.core.bookings.for_day(day)
            if d.customer_telegram_id == person.user.id and d.booking.status.active
        ]
        return details

    # -- what customers do --

    async def book(self, person: Person, day: date, time: str, *, first: bool = True) -> None:
        await say(person.user, "/book")
        await self.tap(person, data=PickService(service_id=self.tenant.service_id).pack())
        await self.tap(person, text=str(day.day))
        await self.tap(person, text=time)
        if first:
            await say(person.user, person.name)
            await say(person.user, "+79161234567")
        await self.tap(person, text=TEXTS(person.locale, "btn_confirm"))

    async def open_own(self, person: Person, day: date) -> int:
        booking_id = (await self.booking_of(person, day)).booking.id
        await say(person.user, "/my")
        await self.tap(person, data=MyBooking(booking_id=booking_id).pack())
        return booking_id

    async def reschedule(self, person: Person, day: date, to_day: date, time: str) -> None:
        booking_id = await self.open_own(person, day)
        await self.tap(person, data=MyBooking(booking_id=booking_id, action="r").pack())
        await self.tap(person, text=str(to_day.day))
        await self.tap(person, text=time)
        await self.tap(person, text=TEXTS(person.locale, "btn_yes_move"))

    async def cancel(self, person: Person, day: date) -> None:
        booking_id = await self.open_own(person, day)
        await self.tap(person, data=MyBooking(booking_id=booking_id, action="c").pack())
        await self.tap(person, data=MyBooking(booking_id=booking_id, action="cy").pack())

    async def join_waitlist(self, person: Person, day: date) -> None:
        await say(person.user, "/book")
        await self.tap(person, data=PickService(service_id=self.tenant.service_id).pack())
        await self.tap(person, text=f"·{day.day}·")
        await self.tap(person, text=TEXTS(person.locale, "btn_waitlist"))

    # -- what owners do --

    async def owner_does(self, owner: Person, booking_id: int, action: str) -> None:
        await self.tap(owner, data=OwnerBooking(booking_id=booking_id, action=action).pack())

    async def owner_moves(self, owner: Person, booking_id: int, day: date, time: str) -> None:
        await self.owner_does(owner, booking_id, "m")
        await self.tap(owner, text=str(day.day))
        await self.tap(owner, text=time)

    async def owner_cancels(self, owner: Person, booking_id: int, reason: str) -> None:
        await self.owner_does(owner, booking_id, "x")
        await say(owner.user, reason)


@pytest.fixture
async def shop(
    tenant: Any, emulator: TelegramEmulator, sandbox: TelegramSandbox, clock: Any
) -> AsyncIterator[Shop]:
    """A bot whose owner confirms bookings; owners and customers in both languages."""
    await tenant.core.catalogue.update_settings(
        confirmation_required=True, phone="+74950000000", map_url="https://maps.example/t1"
    )
    bot_id = 7_000_000_000 + secrets.randbelow(10**8)
    token = f"{bot_id}:{secrets.token_urlsafe(30)[:35].replace('-', 'a')}"
    await sandbox.register_bot(token, username=f"{tenant.names.slug}_bot")
    olga = await sandbox.create_user("Olga", language_code="ru")
    oscar = await sandbox.create_user("Oscar", language_code="en-GB")
    runtime = TenantRuntime(
        slug=tenant.names.slug,
        bot_token=token,
        database_url=tenant.database_url,
        redis_url=tenant.redis_url,
        redis_prefix=tenant.names.redis_prefix,
        owner_ids=[olga["id"], oscar["id"]],
        locale="en",
        telegram_api_base=emulator.base_url,
    )
    ready: asyncio.Future[BotResources] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run(runtime, stop=stop, clock=clock, on_ready=ready.set_result, rate_limit=(100, 10))
    )
    done, _ = await asyncio.wait([ready, task], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()

    async def customer(name: str, locale: str) -> Person:
        user = await sandbox.user(bot_id=bot_id, first_name=name, language_code=locale)
        return Person(user, locale, name)

    people = {
        "olga": Person(sandbox.as_user(bot_id=bot_id, user_id=olga["id"]), "ru", "Olga"),
        "oscar": Person(sandbox.as_user(bot_id=bot_id, user_id=oscar["id"]), "en", "Oscar"),
        "anna": await customer("Anna", "en"),
        "ivan": await customer("Иван", "ru"),
        "wendy": await customer("Wendy", "en"),
        "vera": await customer("Вера", "ru"),
    }
    try:
        yield Shop(ready.result(), tenant, clock, people)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def _fill(shop: Shop, sandbox: TelegramSandbox, day: date, hours: range) -> None:
    """Book ``hours`` of ``day`` (Moscow) for other customers, straight through the core."""
    for hour in hours:
        user = await sandbox.create_user(f"Filler{hour}", language_code="en")
        customer = await shop.tenant.core.customers.register(
            user["id"], name=f"Filler {hour}", phone="+79160000000", locale="en"
        )
        await shop.tenant.core.bookings.book(
            customer_id=customer.id,
            service_id=shop.tenant.service_id,
            start=datetime(day.year, day.month, day.day, hour - 3, 0, tzinfo=UTC),
        )


@pytest.mark.slow  # every notice kind in two locales through one bot: ~16 s
async def test_every_notice_kind_renders_in_every_locale(
    shop: Shop, sandbox: TelegramSandbox, clock: Any
) -> None:
    olga, oscar, anna, ivan = shop.olga, shop.oscar, shop.anna, shop.ivan
    await say(olga.user, "/start")  # the owners' Telegram languages are remembered
    await say(oscar.user, "/start")

    # Booked: both owners are told, each in their language; the owner of the other language confirms.
    await shop.book(anna, TUE, "10:00")
    await shop.book(ivan, TUE, "11:00")
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_new_booking", 2)
    await shop.owner_does(olga, (await shop.booking_of(anna, TUE)).booking.id, "ok")
    await shop.owner_does(oscar, (await shop.booking_of(ivan, TUE)).booking.id, "ok")
    await shop.expect("anna", "customer_confirmed")
    await shop.expect("ivan", "customer_confirmed")

    # The 24 h reminders come due (Mon 11:01 Moscow).
    clock.advance(timedelta(hours=2, minutes=1))
    await shop.wake()
    await shop.expect("anna", "reminder")
    await shop.expect("ivan", "reminder")

    # Customers move their own bookings: both owners are told.
    await shop.reschedule(anna, TUE, WED, "10:00")
    await shop.reschedule(ivan, TUE, WED, "11:00")
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_moved", 2)

    # Owners move them to Thursday, which that fills up: the customer and the other owner are told.
    await _fill(shop, sandbox, THU, range(12, 18))
    await shop.owner_moves(olga, (await shop.booking_of(anna, WED)).booking.id, THU, "10:00")
    await shop.owner_moves(oscar, (await shop.booking_of(ivan, WED)).booking.id, THU, "11:00")
    await shop.expect("anna", "customer_moved")
    await shop.expect("ivan", "customer_moved")
    await shop.expect("oscar", "owner_moved", 3)
    await shop.expect("olga", "owner_moved", 3)

    # Thursday is full: two customers wait for a time; the owners cancel (with a reason, without).
    await shop.join_waitlist(shop.wendy, THU)
    await shop.join_waitlist(shop.vera, THU)
    await shop.owner_cancels(olga, (await shop.booking_of(anna, THU)).booking.id, "Master is ill")
    await shop.owner_cancels(oscar, (await shop.booking_of(ivan, THU)).booking.id, "-")
    await shop.expect("anna", "customer_cancelled")
    await shop.expect("ivan", "customer_cancelled")
    await shop.expect("oscar", "owner_cancelled")
    await shop.expect("olga", "owner_cancelled")
    await shop.expect("wendy", "waitlist_free")
    await shop.expect("vera", "waitlist_free")

    # A customer cancels: both owners are told. Another booking is confirmed, held and ends.
    await shop.book(anna, FRI, "10:00", first=False)
    await shop.book(ivan, FRI, "11:00", first=False)
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_new_booking", 4)
    await shop.cancel(anna, FRI)
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_cancelled", 2)
    await shop.owner_does(olga, (await shop.booking_of(ivan, FRI)).booking.id, "ok")
    await shop.expect("ivan", "customer_confirmed", 2)
    clock.now = datetime(2030, 1, 11, 9, 5, tzinfo=UTC)  # Fri 12:05 Moscow: Ivan's hour is over
    await shop.wake()
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_did_they_come")

    # Reminded and silent: released 3 h before the start; customers and owners are told.
    await shop.book(shop.wendy, SAT, "14:00")
    await shop.book(shop.vera, SAT, "15:00")
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_new_booking", 6)
    await shop.tenant.core.catalogue.update_settings(release_unconfirmed_hours=3)
    clock.now = datetime(2030, 1, 11, 12, 1, tzinfo=UTC)  # Fri 15:01: both 24 h reminders
    await shop.wake()
    await shop.expect("wendy", "reminder")
    await shop.expect("vera", "reminder")
    clock.now = datetime(2030, 1, 12, 9, 1, tzinfo=UTC)  # Sat 12:01: 3 h before 15:00
    await shop.wake()
    await shop.expect("wendy", "customer_released")
    await shop.expect("vera", "customer_released")
    for owner in ("olga", "oscar"):
        await shop.expect(owner, "owner_cancelled", 4)

    # Bookings their checkout could not show (the read-back refused after the commit): each
    # customer's confirmation follows from the background loop once the checkout's grace is over.
    for person, hour in ((anna, 10), (ivan, 11)):
        customer = await shop.tenant.core.customers.register(person.user.id)
        await shop.tenant.core.bookings.book(
            customer_id=customer.id,
            service_id=shop.tenant.service_id,
            start=datetime(2030, 1, 14, hour - 3, tzinfo=UTC),  # Mon 14 Jan, Moscow
            actor=Actor.customer(person.user.id),
        )
    clock.advance(timedelta(seconds=61))
    await shop.wake()
    await shop.expect("anna", "customer_booked")
    await shop.expect("ivan", "customer_booked")

    await shop.record()
    delivered: set[tuple[str, str]] = set()
    for name, person in shop.people.items():
        for kind, locale, text in shop.notices(name):
            assert locale == person.locale, f"{name} ({person.locale}) got {kind} in {locale}"
            assert NOTICES[kind].recipient == ("owner" if name in ("olga", "oscar") else "customer")
            for leftover in LEFTOVERS:
                assert leftover not in text, f"{kind}/{locale} shows {leftover!r}: {text}"
            if kind != "waitlist_free":
                assert "Haircut" in text and "Ivan" in text, text  # service and staff
                assert "1\u202f500 ₽" in text, text
            delivered.add((kind, locale))
    assert delivered == {(kind, locale) for kind in NOTICES for locale in LOCALES}
    tally = shop.resources.notifier.tally
    assert not tally.failed and not tally.retried, tally.snapshot()

    # Values the producers filled in, seen in the texts.
    [cancelled] = [t for k, _, t in shop.notices("anna") if k == "customer_cancelled"]
    assert "Reason: Master is ill" in cancelled and "Thu 10 Jan, 10:00" in cancelled
    [moved] = [t for k, _, t in shop.notices("anna") if k == "customer_moved"]
    assert "moved from Wed 9 Jan, 10:00" in moved and "Thu 10 Jan, 10:00" in moved
    assert "Tverskaya 1" in moved and "+74950000000" in moved
    free = [t for k, _, t in shop.notices("vera") if k == "waitlist_free"]
    assert free and all("Чт 10 янв" in t for t in free)
    [new, *_] = [t for k, _, t in shop.notices("olga") if k == "owner_new_booking"]
    assert "Anna, +79161234567" in new
    ivans_cancel = [t for k, _, t in shop.notices("olga") if k == "owner_cancelled"]
    assert ivans_cancel[0].splitlines()[0] == "❌ Запись отменена"  # no reason given: none shown


# -- the catalogue --


def _macros(locale: str) -> dict[str, Any]:
    env = Environment(
        loader=PackageLoader("templates", "tenant_bot"), undefined=StrictUndefined, autoescape=True
    )
    module = env.get_template(f"{locale}.j2").module
    return {name: getattr(module, name) for name in dir(module) if not name.startswith("_")}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_notice_template_belongs_to_a_kind(locale: str) -> None:
    notice_templates = {key for key in _macros(locale) if is_notice_template(key)}
    assert notice_templates == {model.template() for model in NOTICES.values()}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(NOTICES))
def test_a_kinds_model_fields_are_its_templates_arguments(kind: str, locale: str) -> None:
    model = NOTICES[kind]
    macro = _macros(locale).get(model.template())
    assert macro is not None, f"templates/tenant_bot/{locale}.j2 lacks {model.template()}"
    assert not macro.catch_kwargs and not macro.catch_varargs
    assert set(macro.arguments) == set(model.model_fields)


def test_a_notice_cannot_be_built_without_its_values() -> None:
    facts = BookingFacts(
        service="Haircut",
        staff="Ivan",
        when="Tue 8 Jan, 10:00",
        price="1\u202f500 ₽",
        customer="Anna",
        phone="",
        status="confirmed",
        business="Barber",
        address="",
        map_url="",
        business_phone="",
    )
    assert OwnerMoved.of(facts, old_when="Mon 7 Jan, 12:00").values()["old_when"]
    with pytest.raises(ValidationError, match="old_when"):
        OwnerMoved.of(facts)
    with pytest.raises(ValidationError, match="phone"):
        BookingFacts.model_validate({**facts.model_dump(), "phone": None})
    with pytest.raises(ValidationError, match="day"):
        WaitlistFree(day="")
