"""CustomerService: who books — Telegram id, name, E.164 phone, locale."""

from __future__ import annotations

import re

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, NotFound
from tenant_bot.booking.models import Clock, Customer, utc_now
from tenant_bot.booking.phones import normalize_phone
from tenant_bot.booking.repositories import customers as repo

_LOCALE = re.compile(r"^[a-z]{2}$")


class CustomerService:
    """Registers customers on first contact and keeps their contact details."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def register(
        self,
        telegram_user_id: int,
        *,
        name: str | None = None,
        phone: str | None = None,
        locale: str | None = None,
    ) -> Customer:
        """Create or update the customer of a Telegram user; ``None`` fields keep stored values.

        ``phone`` may be typed any common way and is stored as E.164 (:class:`InvalidPhone` if not a
        number); ``locale`` is a two-letter language code (Telegram's ``language_code`` is cut to it).
        """
        if telegram_user_id <= 0:
            raise InvalidInput("telegram_user_id", "must be a positive Telegram user id")
        if name is not None:
            name = name.strip()[:200]
        if phone is not None:
            phone = normalize_phone(phone)
        if locale is not None:
            locale = locale[:2].lower()
            if not _LOCALE.match(locale):
                raise InvalidInput("locale", "must be a two-letter language code like ru or en")
        async with self._db.transaction() as conn:
            return await repo.upsert_customer(
                conn,
                telegram_user_id=telegram_user_id,
                name=name,
                phone=phone,
                locale=locale,
                now=self._clock(),
            )

    async def set_phone(self, telegram_user_id: int, phone: str) -> Customer:
        """Store the customer's phone (normalised to E.164)."""
        return await self.register(telegram_user_id, phone=phone)

    async def get(self, customer_id: int) -> Customer:
        async with self._db.connection() as conn:
            found = await repo.get_customer(conn, customer_id)
        if found is None:
            raise NotFound("no such customer", entity="customer", id=customer_id)
        return found

    async def by_telegram_id(self, telegram_user_id: int) -> Customer | None:
        """The customer of a Telegram user, or None before their first :meth:`register`."""
        async with self._db.connection() as conn:
            return await repo.get_by_telegram_id(conn, telegram_user_id)
