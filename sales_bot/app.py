"""The sales bot's entry point: builds its dependencies and wires the pieces.

``botfleet sales-bot`` runs :func:`run`: long polling against the configured Bot API (Telegram or the
sandbox emulator), plus the outbox loop that tells owners about payments and deployments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from redis.asyncio import Redis

from fleet.billing.wiring import Billing, open_billing
from fleet.secrets import SecretBox
from fleet.settings import Settings
from sales_bot.flood import RetryAfterMiddleware
from sales_bot.handlers import routers
from sales_bot.middlewares import LocaleMiddleware, RateLimitMiddleware
from sales_bot.outbox import OutboxDelivery
from templates import Texts

log = logging.getLogger(__name__)

FSM_PREFIX = "bf:sales:fsm"


def build_dispatcher(
    *,
    billing: Billing,
    box: SecretBox,
    redis: Redis,
    redis_url: str,
    texts: Texts,
    support: str,
    rate_limit: str,
) -> Dispatcher:
    """The dispatcher with its storage, middlewares, routers and workflow data."""
    storage = RedisStorage(
        redis, key_builder=DefaultKeyBuilder(prefix=FSM_PREFIX, with_bot_id=True)
    )
    dp = Dispatcher(storage=storage)
    limiter = RateLimitMiddleware(
        redis=redis,
        redis_url=redis_url,
        rate=rate_limit,
        notice=lambda locale: texts(locale, "rate_limited"),
    )
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(LocaleMiddleware())
        observer.outer_middleware(limiter)
    dp.errors.outer_middleware(LocaleMiddleware())
    dp.include_routers(*routers())
    dp["billing"] = billing
    dp["box"] = box
    dp["texts"] = texts
    dp["support"] = support
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
) -> None:
    """Poll and deliver events until ``stop`` is set (or polling ends)."""
    delivery = asyncio.create_task(outbox.run(interval=outbox_interval, stop=stop))
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, allowed_updates=["message", "callback_query"]
        )
    )
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({polling, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        with contextlib.suppress(RuntimeError):
            await dispatcher.stop_polling()
        await asyncio.gather(polling, delivery, waiter, return_exceptions=True)


async def run(
    settings: Settings, *, pool: asyncpg.Pool, redis: Redis, box: SecretBox, stop: asyncio.Event
) -> None:
    """Run the sales bot with connections the caller opened."""
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
            )
    finally:
        await bot.session.close()
