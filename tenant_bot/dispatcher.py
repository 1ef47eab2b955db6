"""Compose the dispatcher: storage, isolation, middlewares, dependencies and the feature routers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import TelegramObject
from redis.asyncio import Redis

from schemas.runtime import TenantRuntime
from tenant_bot.booking import BookingCore
from tenant_bot.booking.catalogue import CatalogueService
from tenant_bot.booking.models import Clock
from tenant_bot.handlers import routers
from tenant_bot.middlewares.errors import ErrorReporter
from tenant_bot.middlewares.locale import LocaleMiddleware, LocaleStore
from tenant_bot.middlewares.throttle import ThrottleMiddleware
from tenant_bot.notifications import Notifier
from tenant_bot.staff_invites import StaffInvites
from tenant_bot.texts import BotTexts

# Updates per rate-limit window for owners and staff: a person setting hours or booking walk-ins
# taps several times a second at peaks; five times the customers' limit still stops a runaway client.
TEAM_RATE_LIMIT = 60


class CatalogueReads(BaseMiddleware):
    """Gives each update its own cached reads of the catalogue as ``cache``
    (:class:`~tenant_bot.booking.CatalogueReader`): checked against the catalogue's version once per
    update, so customers see every change at once and no handler ever invalidates anything."""

    def __init__(self, catalogue: CatalogueService) -> None:
        self.catalogue = catalogue

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["cache"] = self.catalogue.reader()
        return await handler(event, data)


def build_dispatcher(
    *,
    runtime: TenantRuntime,
    storage: RedisStorage,
    isolation: BaseEventIsolation,
    redis: Redis,
    core: BookingCore,
    texts: BotTexts,
    notifier: Notifier,
    locales: LocaleStore,
    clock: Clock,
    rate_limit: tuple[int, int] = (12, 10),
    team_rate_limit: int = TEAM_RATE_LIMIT,
) -> Dispatcher:
    """A dispatcher with every router; handlers get their dependencies by parameter name."""
    dp = Dispatcher(storage=storage, events_isolation=isolation)
    limit, window = rate_limit
    dp.update.outer_middleware(
        ThrottleMiddleware(
            redis,
            prefix=runtime.redis_prefix,
            texts=texts,
            limit=limit,
            window=window,
            locales=locales,
            team_limit=max(team_rate_limit, limit),
            owner_ids=frozenset(runtime.owner_ids),
            is_staff=core.catalogue.is_staff,
        )
    )
    dp.update.outer_middleware(LocaleMiddleware(locales, texts=texts, owner_ids=runtime.owner_ids))
    dp.update.outer_middleware(CatalogueReads(core.catalogue))
    dp.errors.register(
        ErrorReporter(texts, owner_ids=frozenset(runtime.owner_ids), outages=core.outages).handle
    )
    dp["runtime"] = runtime
    dp["core"] = core
    dp["texts"] = texts
    dp["notifier"] = notifier
    dp["locales"] = locales
    dp["clock"] = clock
    dp["invites"] = StaffInvites(redis, prefix=runtime.redis_prefix)  # issue 21: /staff
    dp.include_routers(*routers())
    return dp
