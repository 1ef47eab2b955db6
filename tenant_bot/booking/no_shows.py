"""NoShowService: a customer's no-shows at this business, and what the owner's rule makes of them.

Bookings the owner marks "did not come" (``no_show``) are counted per customer. The owner's rule
(settings ``no_show_action`` and ``no_show_threshold``) applies from ``threshold`` no-shows on:

- ``block``: the customer cannot book (:class:`~.errors.CustomerBlocked`, raised by
  ``bookings.book`` for customers; the owner can still book for them);
- ``deposit``: the customer must leave a deposit, even for a service without one — the deposit flow
  asks :meth:`NoShowService.requires_deposit` before it takes a booking;
- ``off``: nothing (the count still shows on the owner's booking card).

Usage::

    standing = await core.no_shows.standing(customer.id)    # .no_shows, .blocked, .deposit_required
    if await core.no_shows.requires_deposit(customer.id): ...
"""

from __future__ import annotations

from tenant_bot.booking.catalogue_cache import CatalogueCache
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import CustomerBlocked
from tenant_bot.booking.models import (
    BusinessSettings,
    Clock,
    NoShowAction,
    NoShowStanding,
    utc_now,
)
from tenant_bot.booking.repositories import attendance as repo


class NoShowService:
    """Counts no-shows and applies the owner's rule to them."""

    def __init__(self, db: Database, *, cache: CatalogueCache, clock: Clock = utc_now) -> None:
        self._db = db
        self._cache = cache
        self._clock = clock

    async def _settings(self) -> BusinessSettings:
        return (await self._cache.view(self._db, now=self._clock())).settings

    async def count(self, customer_id: int) -> int:
        """The customer's bookings marked no-show."""
        async with self._db.connection() as conn:
            return await repo.count_no_shows(conn, customer_id)

    async def standing(
        self, customer_id: int, *, settings: BusinessSettings | None = None
    ) -> NoShowStanding:
        """The customer's count and the rule in force (``settings``: the current ones if None)."""
        settings = settings or await self._settings()
        return NoShowStanding(
            no_shows=await self.count(customer_id),
            action=NoShowAction(settings.no_show_action),
            threshold=settings.no_show_threshold,
        )

    async def requires_deposit(self, customer_id: int) -> bool:
        """Whether the owner's rule asks this customer for a deposit whatever the service."""
        settings = await self._settings()
        if settings.no_show_action != NoShowAction.DEPOSIT:
            return False
        return (await self.standing(customer_id, settings=settings)).deposit_required

    async def check_may_book(
        self, customer_id: int, *, settings: BusinessSettings | None = None
    ) -> None:
        """Raise :class:`CustomerBlocked` if the owner's rule blocks this customer. No database
        round trip while no block rule is on: ``settings`` default to the catalogue cache's copy
        (a rule changed by this process applies at once; by another, within the cache's TTL —
        pass a ``CatalogueReader``'s settings to be exact)."""
        settings = settings or await self._settings()
        if settings.no_show_action != NoShowAction.BLOCK:
            return
        standing = await self.standing(customer_id, settings=settings)
        if standing.blocked:
            raise CustomerBlocked(
                "the owner blocks bookings from customers with repeated no-shows",
                no_shows=standing.no_shows,
            )
