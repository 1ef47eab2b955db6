"""WaitlistService: customers waiting for a service on a day hear first when a booking there is freed.

Flow: a customer finds no slot and joins (service, local day, optionally a staff member). When a booking
is cancelled, the bot calls :meth:`WaitlistService.candidates_for` with it and notifies the returned
customers in order; whoever books first wins (the database lets only one take the time), and their
wish is marked ``booked`` in the booking's own transaction. A wish whose customer can never be told
(blocked the bot, chat gone) is marked ``failed`` with the error (:meth:`WaitlistService.mark_failed`)
and is not offered times again.
"""

from __future__ import annotations

from datetime import date

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import NotFound
from tenant_bot.booking.models import Booking, Clock, WaitlistEntry, utc_now
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import waitlist as repo

ERROR_MAX_CHARS = 500


class WaitlistService:
    """Join, leave, list, and find who to tell about a freed time."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def join(
        self, *, customer_id: int, service_id: int, day: date, staff_id: int | None = None
    ) -> WaitlistEntry:
        """Wait for ``service_id`` on local ``day`` (``staff_id`` None: with anyone)."""
        async with self._db.transaction() as conn:
            if await catalogue_repo.get_service(conn, service_id) is None:
                raise NotFound("no such service", entity="service", id=service_id)
            entry_id = await repo.join(
                conn,
                customer_id=customer_id,
                service_id=service_id,
                staff_id=staff_id,
                day=day,
                now=self._clock(),
            )
            entry = await repo.get(conn, entry_id)
        assert entry is not None
        return entry

    async def leave(self, entry_id: int, *, customer_id: int) -> None:
        """Stop waiting; raises :class:`NotFound` if the customer has no such waiting wish."""
        async with self._db.connection() as conn:
            left = await repo.leave(
                conn, entry_id=entry_id, customer_id=customer_id, now=self._clock()
            )
        if not left:
            raise NotFound("no such waitlist entry", entity="waitlist", id=entry_id)

    async def for_customer(self, customer_id: int) -> list[WaitlistEntry]:
        """The customer's waiting wishes for today and later."""
        async with self._db.connection() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
            today = self._clock().astimezone(zone).date()
            return await repo.for_customer(conn, customer_id, today)

    async def candidates_for(self, freed: Booking) -> list[WaitlistEntry]:
        """Who to notify about the time ``freed`` released, oldest wish first (stamped notified)."""
        async with self._db.transaction() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
            now = self._clock()
            if freed.starts_at <= now:
                return []
            return await repo.notify_candidates(
                conn,
                service_id=freed.service_id,
                staff_id=freed.staff_id,
                day=freed.starts_at.astimezone(zone).date(),
                exclude_customer_id=freed.customer_id,
                now=now,
            )

    async def mark_failed(self, entry_id: int, *, error: str) -> bool:
        """Stop offering times to this wish: its customer cannot be told (``error`` says why)."""
        async with self._db.connection() as conn:
            return await repo.mark_failed(
                conn, entry_id=entry_id, error=error[:ERROR_MAX_CHARS], now=self._clock()
            )
