"""Compose the dispatcher: storage, isolation, middlewares, dependencies and the feature routers."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis

from schemas.runtime import TenantRuntime
from tenant_bot.booking import BookingCore
from tenant_bot.booking.models import Clock
from tenant_bot.cache import CatalogueCache
from tenant_bot.handlers import routers
from tenant_bot.middlewares.errors import ErrorReporter
from tenant_bot.middlewares.locale import LocaleMiddleware, LocaleStore
from tenant_bot.middlewares.throttle import ThrottleMiddleware
from tenant_bot.notifications import Notifier
from tenant_bot.texts import BotTexts


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
        )
    )
    dp.update.outer_middleware(LocaleMiddleware(locales, texts=texts, owner_ids=runtime.owner_ids))
    dp.errors.register(ErrorReporter(texts).handle)
    dp["runtime"] = runtime
    dp["core"] = core
    dp["cache"] = CatalogueCache(core.catalogue)
    dp["texts"] = texts
    dp["notifier"] = notifier
    dp["locales"] = locales
    dp["clock"] = clock
    dp.include_routers(*routers())
    return dp
