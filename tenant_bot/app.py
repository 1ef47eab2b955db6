"""The tenant bot process: build everything from the runtime contract, run, stop cleanly.

Entry points:

- :func:`run_from_env` — sync; reads ``BOTFLEET_TENANT_*`` and runs until SIGTERM/SIGINT (used by
  ``botfleet tenant-bot``, ``python -m tenant_bot`` and the deploy worker's forking ``process`` runtime).
- :func:`run` — async; the same for a :class:`~schemas.runtime.TenantRuntime` already read, stopping
  when ``stop`` is set (tests, benchmarks).
- :func:`warm_up` — for a process that forks bots (the deploy worker's fork server): builds, once and
  without any I/O, what each bot would otherwise build for itself at start-up.

Start-up connects PostgreSQL (as the tenant's role) and Redis (as the tenant's ACL user), asks
Telegram ``getMe``, registers the command menus, starts receiving updates and the background work, and
only then writes the heartbeat the deploy worker waits for. Shutdown stops receiving, cancels and awaits
every task, and closes the bot session, Redis and the pool.

The background work and the heartbeat run as supervised loops (:class:`kit.supervisor.Supervisor`,
``resources.supervisor``): a loop that crashes is logged with its traceback, counted and restarted with
backoff; one that keeps crashing, or stops making progress, makes the bot unhealthy, and the heartbeat
(:mod:`tenant_bot.heartbeat`) then stops being refreshed so the deploy worker's reconciler redeploys
the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from schemas.runtime import HEARTBEAT_TTL_SECONDS, RuntimeContractError, TenantRuntime
from tenant_bot.booking.models import Clock, utc_now
from tenant_bot.bot_name import publish_name
from tenant_bot.health import snapshot
from tenant_bot.heartbeat import HEARTBEAT_INTERVAL_SECONDS, Heartbeat
from tenant_bot.profile import seed_profile
from tenant_bot.resources import DEFAULT_RATE_LIMIT, BotResources, StartupError, open_resources
from tenant_bot.serving import IdleReceiver, Receiver, make_receiver

log = logging.getLogger(__name__)

# A pass of the background loop normally takes well under a second; one that has not finished in
# five minutes is stuck (the reminder lease is five minutes too). The heartbeat loop passes every
# few seconds.
BACKGROUND_STALE_AFTER_SECONDS = 300.0
HEARTBEAT_STALE_AFTER_SECONDS = HEARTBEAT_TTL_SECONDS * 2


async def run(
    runtime: TenantRuntime,
    *,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
    background: bool = True,
    receive: bool = True,
    rate_limit: tuple[int, int] = DEFAULT_RATE_LIMIT,
    on_ready: Callable[[BotResources], None] | None = None,
    heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS,
) -> None:
    """Run the tenant bot until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None).

    ``clock`` replaces the wall clock (tests); ``background=False`` leaves reminders and the other
    periodic work to another process, ``receive=False`` leaves updates to another process (a second
    worker of the same tenant); ``rate_limit`` is (updates, seconds) per user; ``on_ready`` is
    called once the bot is ready; ``heartbeat_interval`` is how often the heartbeat is written
    (tests shorten it).
    """
    clock = clock or utc_now
    if stop is None:
        stop = asyncio.Event()
        _install_signal_handlers(stop)
    resources = await open_resources(runtime, clock=clock, rate_limit=rate_limit)
    receiver: Receiver | None = None
    supervisor = resources.supervisor
    heartbeat = Heartbeat(
        resources.redis,
        key=runtime.heartbeat_key,
        ttl_seconds=HEARTBEAT_TTL_SECONDS,
        clock=clock,
        interval=heartbeat_interval,
        details={"bot": resources.me.username},
        health=lambda: snapshot(supervisor, resources.notifier.tally, resources.core.outages),
        file=runtime.heartbeat_file,
    )
    if background:
        supervisor.add(
            "background",
            lambda: resources.background.run(beat=supervisor.beater("background")),
            stale_after=BACKGROUND_STALE_AFTER_SECONDS,
        )
        supervisor.add(  # deposits: unpaid holds end and free their seats (issue 19)
            "holds",
            lambda: resources.holds.run(beat=supervisor.beater("holds")),
            stale_after=BACKGROUND_STALE_AFTER_SECONDS,
        )
        for name, loop in (("reviews", resources.reviews), ("mailings", resources.broadcaster)):
            supervisor.add(
                name,
                functools.partial(loop.run, beat=supervisor.beater(name)),
                stale_after=BACKGROUND_STALE_AFTER_SECONDS,
            )
    supervisor.add(
        "heartbeat",
        lambda: heartbeat.run(beat=supervisor.beater("heartbeat")),
        stale_after=HEARTBEAT_STALE_AFTER_SECONDS,
    )
    try:
        # on the background work's pool: its connection closes at once, so start-up leaves the bot
        # holding no connection (a fleet starting at once does not fill PostgreSQL)
        startup_core = resources.background.core
        await seed_profile(startup_core, runtime)
        await publish_name(
            resources.bot, (await startup_core.catalogue.get_settings()).business_name
        )
        await resources.register_commands(await startup_core.catalogue.list_staff())
        receiver = make_receiver(resources) if receive else IdleReceiver()
        await receiver.start()
        supervisor.start()  # the background work, then the heartbeat loop
        await heartbeat.beat()
        log.info("tenant bot ready", extra={"bot": resources.me.username, "mode": runtime.mode})
        if on_ready is not None:
            on_ready(resources)
        stopped = asyncio.create_task(stop.wait(), name="stop")
        waiting: list[asyncio.Future[Any]] = [stopped, receiver.finished]
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if receiver.finished in done and not stop.is_set():
            receiver.finished.result()  # re-raise what ended the receiver
    finally:
        log.info("tenant bot stopping")
        if receiver is not None:
            await receiver.stop()
        await supervisor.stop()
        await heartbeat.clear()
        await resources.close()
        log.info("tenant bot stopped")


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


def run_from_env(environ: dict[str, str] | None = None) -> int:
    """Read the runtime contract from the environment and run until SIGTERM/SIGINT.

    Returns the process exit code: 0 after a clean stop, 2 for an invalid contract (the message names
    each bad variable), 1 when start-up fails (database, Redis or Telegram unreachable).
    """
    from tenant_bot.logs import setup_logging

    try:
        runtime = TenantRuntime.from_env(environ)
    except RuntimeContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(runtime.slug, os.environ.get("BOTFLEET_LOG_LEVEL", "INFO").upper())
    if not _merge_memory():
        return 1
    try:
        asyncio.run(run(runtime))
    except StartupError as exc:
        log.error("tenant bot cannot start", extra={"reason": str(exc)})
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _merge_memory() -> bool:
    """Opt this bot into kernel same-page merging as ``BOTFLEET_MEMORY_MERGE`` says (auto when
    unset; ``kit/memory_merge.py``): a bot in a container does it for itself (containers share the
    host's kernel); a forked bot inherited the fork server's choice and keeps it. False when
    ``on`` cannot be honoured (the bot does not start)."""
    from kit.memory_merge import (
        ENV_VAR,
        MemoryMergeUnavailable,
        apply_memory_merge,
        merging_enabled,
    )

    if merging_enabled():
        return True
    try:
        decision = apply_memory_merge(os.environ.get(ENV_VAR, "auto"))
    except (MemoryMergeUnavailable, ValueError) as exc:
        log.error("tenant bot cannot start", extra={"reason": str(exc)})
        return False
    log.info(
        "memory merging " + ("on" if decision.enabled else "off") + f": {decision.reason}",
        extra={"memory_merge": decision.mode},
    )
    return True


def warm_up() -> None:
    """Prepare what every bot builds at start-up, once, in a process that then forks bots.

    Compiles the message templates (``templates/tenant_bot/*.j2``) into the shared jinja2 environment
    and builds a throwaway Bot and dispatcher with every router (first-use imports and caches), so
    forked bots share all of it copy-on-write instead of each building its own. No side effects: no
    connection is opened and nothing is sent (Telegram, PostgreSQL and Redis are not touched); the
    objects built are dropped. Call it before ``gc.freeze()``.
    """
    from typing import Any, cast

    from aiogram.fsm.storage.base import DefaultKeyBuilder
    from aiogram.fsm.storage.redis import RedisStorage
    from redis.asyncio import Redis

    from templates import LOCALES
    from tenant_bot.booking import BookingCore
    from tenant_bot.dispatcher import build_dispatcher
    from tenant_bot.isolation import ChatEventIsolation
    from tenant_bot.middlewares.locale import LocaleStore
    from tenant_bot.notifications import Notifier
    from tenant_bot.resources import make_bot
    from tenant_bot.texts import BotTexts

    for locale in LOCALES:
        BotTexts(default_locale=locale).has(locale, "start")  # compiles <locale>.j2
    runtime = TenantRuntime(
        slug="warmup",
        bot_token="123456789:" + "A" * 35,
        database_url="postgresql://warmup@127.0.0.1:1/warmup",
        redis_url="redis://127.0.0.1:1/0",
        redis_prefix="warmup:t:warmup:",
        owner_ids=[1],
        telegram_api_base="http://127.0.0.1:1",
    )
    redis = Redis.from_url(runtime.redis_url.get_secret_value())  # connects on first command only
    storage = RedisStorage(redis=redis, key_builder=DefaultKeyBuilder(prefix="warmup:t:warmup:fsm"))
    texts = BotTexts(default_locale=runtime.locale)
    core = BookingCore(cast(Any, None), clock=utc_now)  # no query runs
    locales = LocaleStore(redis, prefix=runtime.redis_prefix)
    bot = make_bot(runtime)
    notifier = Notifier(
        bot,
        redis=redis,
        prefix=runtime.redis_prefix,
        texts=texts,
        locales=locales,
        owner_ids=runtime.owner_ids,
        waitlist=core.waitlist,
    )
    build_dispatcher(
        runtime=runtime,
        storage=storage,
        isolation=ChatEventIsolation(),
        redis=redis,
        core=core,
        texts=texts,
        notifier=notifier,
        locales=locales,
        clock=utc_now,
    )
    _prebuild_shared(runtime, bot)


def _prebuild_shared(runtime: TenantRuntime, bot: Any) -> None:
    """The rest of :func:`warm_up`: what each bot would otherwise build privately on first use
    (measured per forked bot in issue 17): its routers, the Bot API request and response path,
    the time zone of the default contract and redis-py's cached library version (read from
    package metadata on each bot's first connection)."""
    from zoneinfo import ZoneInfo

    from redis.utils import get_lib_version

    from tenant_bot.api_warm_up import warm_api_paths
    from tenant_bot.handlers import prebuild_routers

    warm_api_paths(bot)
    ZoneInfo(runtime.timezone)  # kept by zoneinfo's strong cache; loads the tzdata package
    get_lib_version()
    prebuild_routers()
