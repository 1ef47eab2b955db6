"""ClientBook: the owner's book of customers — found by name or phone, a card with their figures,
notes, edits, blocking from booking; and the customers the owner books by phone or at the door.

Figures are counted from the bookings (never kept as counters that could drift): visits are
bookings marked done, no-shows marked no-show, cancellations cancelled by anyone, spent is the
price of the visits. A blocked customer cannot book (``book_slots`` refuses them under the same
row lock as the limit, so a block takes effect for the very next attempt); the owner still can
book them, overriding the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, NotFound
from tenant_bot.booking.models import Clock, Customer, utc_now
from tenant_bot.booking.phones import normalize_phone
from tenant_bot.booking.repositories import client_book as repo

SEARCH_LIMIT = 20
_DIGITS = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class ClientCard:
    """A customer and their figures, for the owner."""

    customer: Customer
    notes: str
    blocked: bool
    since: datetime
    visits: int
    no_shows: int
    cancellations: int
    upcoming: int
    spent: Decimal
    last_visit: datetime | None

    @property
    def has_chat(self) -> bool:
        """Whether the bot can write to them."""
        return self.customer.telegram_user_id is not None


def _name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= 200:
        raise InvalidInput("name", "must be 1-200 characters")
    return cleaned


class ClientBook:
    """The owner's customers."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def search(self, query: str) -> list[Customer]:
        """Customers whose name contains ``query`` or, when it has 3+ digits, whose phone
        contains them (``916 12`` finds ``+7916123...``); at most 20, most recently seen first."""
        text = " ".join(query.split())
        if not text:
            raise InvalidInput("query", "type a part of a name or of a phone number")
        digits = "".join(_DIGITS.findall(text))
        phone_digits = digits if len(digits) >= 3 else None
        name = None if phone_digits and len(digits) * 2 >= len(text.replace(" ", "")) else text
        async with self._db.connection() as conn:
            rows = await repo.search(conn, name=name, phone_digits=phone_digits, limit=SEARCH_LIMIT)
        return [r.customer for r in rows]

    async def find_or_add(self, *, name: str | None, phone: str | None) -> tuple[Customer, bool]:
        """The customer with ``phone`` if there is one (a caller known by number), else a new
        customer without Telegram; True when added. A new one needs a name."""
        e164 = normalize_phone(phone) if phone else None
        async with self._db.transaction() as conn:
            if e164 is not None:
                found = await repo.by_phone(conn, e164)
                if found is not None:
                    return found, False
            if not name:
                raise InvalidInput("name", "a new customer needs a name")
            added = await repo.insert_offline(conn, name=_name(name), phone=e164, now=self._clock())
        return added, True

    async def walk_in(self, *, name: str) -> Customer:
        """The one customer anonymous walk-ins are booked for (``name`` on first use)."""
        async with self._db.transaction() as conn:
            return await repo.walk_in(conn, name=_name(name), now=self._clock())

    async def card(self, customer_id: int) -> ClientCard:
        async with self._db.connection() as conn:
            row = await repo.get(conn, customer_id)
            if row is None:
                raise NotFound("no such customer", entity="customer", id=customer_id)
            figures = await repo.figures(conn, customer_id, self._clock())
        return ClientCard(
            customer=row.customer,
            notes=row.notes,
            blocked=row.blocked,
            since=row.created_at,
            visits=figures.visits,
            no_shows=figures.no_shows,
            cancellations=figures.cancellations,
            upcoming=figures.upcoming,
            spent=figures.spent,
            last_visit=figures.last_visit,
        )

    async def update(
        self,
        customer_id: int,
        *,
        name: str | None = None,
        phone: str | None = None,
        notes: str | None = None,
        blocked: bool | None = None,
    ) -> ClientCard:
        """Change the name, phone (any common form, stored E.164), notes or blocked flag."""
        if notes is not None and len(notes) > 2000:
            raise InvalidInput("notes", "must be at most 2000 characters")
        async with self._db.transaction() as conn:
            changed = await repo.update(
                conn,
                customer_id,
                name=_name(name) if name is not None else None,
                phone=normalize_phone(phone) if phone is not None else None,
                notes=notes.strip() if notes is not None else None,
                blocked=blocked,
                now=self._clock(),
            )
        if not changed:
            raise NotFound("no such customer", entity="customer", id=customer_id)
        return await self.card(customer_id)
