"""The sales bot's entry point: builds its dependencies and wires the pieces.

``botfleet sales-bot`` runs :func:`run`: long polling against the configured Bot API (Telegram or the
sandbox emulator), plus the outbox loop that tells owners about payments and deployments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from redis.asyncio import Redis

from fleet.billing.wiring import Billing, open_billing
from fleet.identifiers import platform_redis_key
from fleet.secrets import SecretBox
from fleet.settings import Settings
from kit.flood import RetryAfterMiddleware
from kit.supervisor import Supervisor
from sales_bot.handlers import routers
from sales_bot.middlewares import OwnerLocaleMiddleware, RateLimitMiddleware
from sales_bot.outbox import OutboxDelivery
from sales_bot.owner_locales import OwnerLocales
from templates import Texts

log = logging.getLogger(__name__)

# On stop, the outbox may finish the batch it is sending (each message is recorded as sent).
STOP_GRACE_S = 10.0


def build_dispatcher(
    *,
    billing: Billing,
    box: SecretBox,
    redis: Redis,
    redis_url: str,
    texts: Texts,
    support: str,
    rate_limit: str,
    owner_locales: OwnerLocales,
    role_prefix: str = "tenant_",
) -> Dispatcher:
    """The dispatcher with its storage, middlewares, routers and workflow data. Its Redis keys
    start with the installation's prefix (``role_prefix``)."""
    storage = RedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(
            prefix=platform_redis_key(role_prefix, "sales:fsm"), with_bot_id=True
        ),
    )
    dp = Dispatcher(storage=storage)
    limiter = RateLimitMiddleware(
        redis=redis,
        redis_url=redis_url,
        key_prefix=platform_redis_key(role_prefix, "sales:rl"),
        rate=rate_limit,
        notice=lambda locale: texts(locale, "rate_limited"),
    )
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(OwnerLocaleMiddleware(owner_locales))
        observer.outer_middleware(limiter)
    dp.errors.outer_middleware(OwnerLocaleMiddleware(owner_locales))
    dp.include_routers(*routers())
    dp["billing"] = billing
    dp["box"] = box
    dp["texts"] = texts
    dp["support"] = support
    dp["owner_locales"] = owner_locales
    return dp


def make_bot(token: str, *, api_base: str | None) -> Bot:
    """The sales bot's Bot: HTML texts, the configured Bot API server."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else None
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bot.session.middleware(RetryAfterMiddleware())
    return bot


async def serve(
    *,
    bot: Bot,
    dispatcher: Dispatcher,
    outbox: OutboxDelivery,
    outbox_interval: float,
    stop: asyncio.Event,
    supervisor: Supervisor | None = None,
) -> None:
    """Poll and deliver events until ``stop`` is set, both as loops of ``supervisor`` (default: one
    of its own, ``sales-bot``): a loop that crashes is logged, counted and restarted with backoff,
    and one that keeps failing (or, for the outbox, stops passing) turns the process's health red."""
    supervisor = supervisor or Supervisor("sales-bot")
    beat = supervisor.beater("outbox")
    supervisor.add(
        "outbox",
        partial(outbox.run, interval=outbox_interval, stop=stop, on_tick=beat),
        stale_after=max(120.0, 20 * outbox_interval),
    )
    supervisor.add("polling", partial(_poll, dispatcher, bot, stop=stop))
    supervisor.start()
    try:
        await stop.wait()
    finally:
        stop.set()
        with contextlib.suppress(RuntimeError):  # not polling at this moment
            await dispatcher.stop_polling()
        await supervisor.stop(grace=STOP_GRACE_S)


async def _poll(dispatcher: Dispatcher, bot: Bot, *, stop: asyncio.Event) -> None:
    """Long polling; aiogram retries network errors itself. Polling that ends while the bot should
    still run is a crash (the supervisor restarts it), never a silent end of updates."""
    await dispatcher.start_polling(
        bot, handle_signals=False, allowed_updates=["message", "callback_query"]
    )
    if not stop.is_set():
        raise RuntimeError("long polling ended while the sales bot should run")


async def run(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    redis: Redis,
    box: SecretBox,
    stop: asyncio.Event,
    supervisor: Supervisor | None = None,
) -> None:
    """Run the sales bot with connections the caller opened; its loops run under ``supervisor``
    (pass one to watch their health, as ``botfleet sales-bot`` and ``botfleet up`` do)."""
    texts = Texts("sales_bot")
    bot = make_bot(settings.require("sales_bot_token"), api_base=settings.telegram_api_base)
    try:
        async with open_billing(settings=settings, pool=pool, secrets=box) as billing:
            dispatcher = build_dispatcher(
                billing=billing,
                box=box,
                redis=redis,
                redis_url=settings.require("redis_url"),
                texts=texts,
                support=settings.sales_support_contact,
                rate_limit=settings.sales_rate_limit,
                owner_locales=OwnerLocales(pool),
                role_prefix=settings.tenant_role_prefix,
            )
            outbox = OutboxDelivery(
                pool=pool, bot=bot, texts=texts, support=settings.sales_support_contact
            )
            me = await bot.get_me()
            log.info("sales bot started", extra={"bot_username": me.username})
            await serve(
                bot=bot,
                dispatcher=dispatcher,
                outbox=outbox,
                outbox_interval=settings.sales_outbox_interval_s,
                stop=stop,
                supervisor=supervisor,
            )
    finally:
        await bot.session.close()
