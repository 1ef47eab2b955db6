"""Everything one tenant bot holds open, built from its runtime contract and closed in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import User
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from kit.flood import RetryAfterMiddleware
from kit.supervisor import Supervisor
from schemas.runtime import TENANT_DB_POOL_MAX_DEFAULT, TenantRuntime
from tenant_bot.background import BackgroundWorker
from tenant_bot.booking import BookingCore, StorageOutages, init_connection
from tenant_bot.booking.models import Clock, Staff
from tenant_bot.broadcaster import Broadcaster
from tenant_bot.commands import register_commands, restore_staff_menus
from tenant_bot.dispatcher import build_dispatcher
from tenant_bot.holds import HoldReleaser
from tenant_bot.isolation import ChatEventIsolation
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.notifications import Notifier
from tenant_bot.payments import Payments
from tenant_bot.review_requests import ReviewRequester
from tenant_bot.texts import BotTexts

log = logging.getLogger(__name__)

# A conversation left alone for a week is forgotten; nobody resumes a booking after that.
FSM_TTL_SECONDS = 7 * 24 * 3600
# PostgreSQL connections follow activity, not tenants (docs/ARCHITECTURE.md, "Connections"): the
# pool opens none ahead of need and closes each one idle for DB_IDLE_SECONDS, so an idle bot holds
# none; a burst uses at most DB_POOL_MAX, and a request that finds them all busy waits at most
# DB_ACQUIRE_TIMEOUT_SECONDS, then the user is told to try again in a minute. The background work
# has a pool of its own of one connection that closes as soon as a pass is over
# (BACKGROUND_LINGER_SECONDS), so its rare passes hold nothing between them either.
DB_POOL_MAX = TENANT_DB_POOL_MAX_DEFAULT
DB_IDLE_SECONDS = 30.0
DB_ACQUIRE_TIMEOUT_SECONDS = 5.0
BACKGROUND_LINGER_SECONDS = 0.5
# asyncpg's default: prepared statements cached per connection (0 behind a transaction pooler).
STATEMENT_CACHE_SIZE = 100
# pg_stat_activity.application_name of the bot's connections ("tenant_bot:background" for the
# background work's): operators and the density benchmark count them by it.
APPLICATION_NAME = "tenant_bot"
# Redis: the bot's commands share one client whose pool never opens more than this; a command that
# finds them all busy waits for one (up to REDIS_WAIT_SECONDS) rather than failing.
REDIS_MAX_CONNECTIONS = 5
REDIS_WAIT_SECONDS = 10.0
# A clean stop waits this long for each of the bot session, the FSM storage and the pool.
CLOSE_TIMEOUT_SECONDS = 10.0
# Updates per user per window (seconds): generous for people, tight for floods and scripts.
DEFAULT_RATE_LIMIT = (12, 10)


class StartupError(RuntimeError):
    """A dependency the bot needs cannot be reached; the message says which (never a secret)."""


@dataclass
class BotResources:
    """The bot's open connections and the objects wired on them."""

    runtime: TenantRuntime
    pool: asyncpg.Pool
    background_pool: asyncpg.Pool
    redis: Redis
    bot: Bot
    me: User
    storage: RedisStorage
    dispatcher: Dispatcher
    core: BookingCore
    notifier: Notifier
    background: BackgroundWorker
    texts: BotTexts
    holds: HoldReleaser
    reviews: ReviewRequester
    broadcaster: Broadcaster
    # the bot's loops (background work, heartbeat) run under it; its health is the bot's health
    supervisor: Supervisor = field(default_factory=lambda: Supervisor("tenant_bot"))

    async def register_commands(self, staff: Iterable[Staff] = ()) -> None:
        """Publish the command menus (customers and owners, per language), and the staff menu of
        a linked, switched-on ``staff`` member's chat that has none."""
        await register_commands(self.bot, texts=self.texts, owner_ids=self.runtime.owner_ids)
        owners = set(self.runtime.owner_ids)
        await restore_staff_menus(
            self.bot,
            texts=self.texts,
            chat_ids=[
                m.telegram_user_id
                for m in staff
                if m.active and m.telegram_user_id is not None and m.telegram_user_id not in owners
            ],
            locale_of=self.notifier.locales.get,
        )

    async def close(self) -> None:
        """Close the bot session, the FSM storage, Redis and the pools (each even if another fails)."""
        closers = (
            self.bot.session.close,
            self.storage.close,
            self.pool.close,
            self.background_pool.close,
        )
        for closer in closers:
            try:
                await asyncio.wait_for(closer(), timeout=CLOSE_TIMEOUT_SECONDS)
            except Exception:
                log.warning("closing failed", extra={"closer": getattr(closer, "__qualname__", "")})
                for pool in (self.pool, self.background_pool):
                    if closer == pool.close:
                        pool.terminate()  # a connection still held is not waited for any longer
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()


def make_bot(runtime: TenantRuntime) -> Bot:
    """The aiogram ``Bot`` for the runtime: HTML parse mode, the configured Bot API server."""
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(runtime.telegram_api_base))
        if runtime.telegram_api_base
        else AiohttpSession()
    )
    session.middleware(RetryAfterMiddleware())
    return Bot(
        runtime.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


async def _connect_database(runtime: TenantRuntime) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """The bot's pool and the background work's, both empty until used; the database is checked
    once, on the background pool (whose connection closes right after)."""
    dsn = runtime.database_url.get_secret_value()
    # Behind PgBouncer in transaction mode no named statement may outlive a transaction: every query
    # goes as an unnamed one, whose Parse and Bind asyncpg sends with no Sync between them, so the
    # pooler keeps them on one server connection (fleet/pooler.py says why that is safe).
    statements = 0 if runtime.db_transaction_pooler else STATEMENT_CACHE_SIZE
    pool = background = None
    try:
        pool = await asyncpg.create_pool(
            dsn,
            statement_cache_size=statements,
            min_size=0,
            max_size=runtime.db_pool_max or DB_POOL_MAX,
            command_timeout=30,
            max_inactive_connection_lifetime=runtime.db_idle_seconds or DB_IDLE_SECONDS,
            init=init_connection,
            server_settings={"application_name": APPLICATION_NAME},
        )
        background = await asyncpg.create_pool(
            dsn,
            statement_cache_size=statements,
            min_size=0,
            max_size=1,
            command_timeout=30,
            max_inactive_connection_lifetime=BACKGROUND_LINGER_SECONDS,
            init=init_connection,
            server_settings={"application_name": APPLICATION_NAME + ":background"},
        )
        async with background.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        for opened in (pool, background):
            if opened is not None:
                opened.terminate()
        raise StartupError(f"database unreachable: {type(exc).__name__}") from exc
    return pool, background


async def _connect_redis(runtime: TenantRuntime) -> Redis:
    redis = Redis.from_pool(
        BlockingConnectionPool.from_url(
            runtime.redis_url.get_secret_value(),
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=REDIS_WAIT_SECONDS,
            socket_timeout=10,
            socket_connect_timeout=10,
            health_check_interval=30,
        )
    )
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise StartupError(f"redis unreachable: {type(exc).__name__}") from exc
    return redis


async def open_resources(
    runtime: TenantRuntime, *, clock: Clock, rate_limit: tuple[int, int] = DEFAULT_RATE_LIMIT
) -> BotResources:
    """Connect everything and wire the dispatcher; raises :class:`StartupError` naming what failed."""
    pool, background_pool = await _connect_database(runtime)
    try:
        redis = await _connect_redis(runtime)
    except StartupError:
        await pool.close()
        await background_pool.close()
        raise
    bot = make_bot(runtime)
    try:
        me = await bot.get_me()
    except (TelegramAPIError, TelegramNetworkError) as exc:
        await bot.session.close()
        await redis.aclose()
        await pool.close()
        await background_pool.close()
        raise StartupError(f"telegram getMe failed: {type(exc).__name__}") from exc
    storage = RedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(prefix=f"{runtime.redis_prefix}fsm", with_bot_id=True),
        state_ttl=FSM_TTL_SECONDS,
        data_ttl=FSM_TTL_SECONDS,
    )
    texts = BotTexts(default_locale=runtime.locale)
    acquire_timeout = runtime.db_acquire_timeout or DB_ACQUIRE_TIMEOUT_SECONDS
    # one tally of "database unavailable" for the bot's requests and its background work alike
    outages = StorageOutages()
    core = BookingCore(pool, clock=clock, acquire_timeout=acquire_timeout, outages=outages)
    locales = LocaleStore(redis, prefix=runtime.redis_prefix)
    notifier = Notifier(
        bot,
        redis=redis,
        prefix=runtime.redis_prefix,
        texts=texts,
        locales=locales,
        owner_ids=runtime.owner_ids,
        waitlist=core.waitlist,
        clock=clock,
    )
    dispatcher = build_dispatcher(
        runtime=runtime,
        storage=storage,
        isolation=ChatEventIsolation(),
        redis=redis,
        core=core,
        texts=texts,
        notifier=notifier,
        locales=locales,
        clock=clock,
        rate_limit=rate_limit,
    )
    background_core = BookingCore(
        background_pool, clock=clock, acquire_timeout=acquire_timeout, outages=outages
    )
    background = BackgroundWorker(core=background_core, notifier=notifier, clock=clock)
    payments = Payments(
        core=core,
        bot=bot,
        bot_token=runtime.bot_token.get_secret_value(),
        texts=texts,
        notifier=notifier,
    )
    dispatcher["payments"] = payments
    holds = HoldReleaser(core=background.core, payments=payments, notifier=notifier, clock=clock)
    payments.on_hold = holds.expect
    # review requests and mailings (issue 20) share the background work's pool
    reviews = ReviewRequester(core=background_core, notifier=notifier, clock=clock)
    broadcaster = Broadcaster(core=background_core, bot=bot, notifier=notifier, clock=clock)
    dispatcher["broadcaster"] = broadcaster  # the owner's "Send" and "Stop" wake it

    def changed() -> None:  # a new, moved or visited booking may bring work due soon
        background.nudge()
        reviews.nudge()

    core.bookings.on_change = changed
    return BotResources(
        runtime=runtime,
        pool=pool,
        background_pool=background_pool,
        redis=redis,
        bot=bot,
        me=me,
        storage=storage,
        dispatcher=dispatcher,
        core=core,
        notifier=notifier,
        background=background,
        texts=texts,
        holds=holds,
        reviews=reviews,
        broadcaster=broadcaster,
    )
