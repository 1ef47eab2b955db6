"""How updates reach the dispatcher: long polling or a webhook server, plus an optional health port
(``/healthz``: 200 while the bot's supervised loops are healthy, 503 with the reasons otherwise).

Both receivers share one small interface (``start`` returns once updates flow, ``finished`` completes
if receiving dies, ``stop`` ends it), so :mod:`tenant_bot.app` does not care which mode runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from tenant_bot.health import snapshot

# aiohttp's server (~1.5 MB of a bot's memory) is imported only by a bot that serves HTTP: in
# webhook mode, or with a health port; a polling bot, the usual one, never loads it.
if TYPE_CHECKING:
    from aiohttp import web

    from tenant_bot.resources import BotResources

log = logging.getLogger(__name__)

POLLING_TIMEOUT_SECONDS = 25
DRAIN_SECONDS = 10.0
SHUTDOWN_SECONDS = 2.0


class Receiver(Protocol):
    """Feeds updates to the dispatcher."""

    finished: asyncio.Future[None]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _health_routes(app: web.Application, resources: BotResources) -> None:
    """``/healthz``: 200 while the bot's supervised loops are healthy, 503 (with why) otherwise."""

    from aiohttp import web

    async def healthz(_: web.Request) -> web.Response:
        health = snapshot(resources.supervisor, resources.notifier.tally, resources.core.outages)
        status = "ok" if health["healthy"] else "unhealthy"
        return web.json_response(
            {"status": status, **health}, status=200 if health["healthy"] else 503
        )

    app.router.add_get("/healthz", healthz)


class _Site:
    """An aiohttp application listening on one port."""

    def __init__(self, app: web.Application, port: int) -> None:
        from aiohttp import web

        # Telegram keeps its webhook connection alive; do not wait a minute for it to go.
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        self.port = port

    async def start(self) -> None:
        from aiohttp import web

        await self.runner.setup()
        await web.TCPSite(self.runner, host="0.0.0.0", port=self.port).start()  # noqa: S104

    async def stop(self) -> None:
        await self.runner.cleanup()


async def drain(dispatcher: object, timeout: float = DRAIN_SECONDS) -> None:
    """Let updates already being handled finish (a booking half-way is not cut off); cancel what
    is still running after ``timeout`` seconds."""
    # aiogram keeps the tasks of updates handled concurrently in this (private) set.
    pending = {t for t in getattr(dispatcher, "_handle_update_tasks", set()) if not t.done()}
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=1)
        log.warning("cancelled updates still running at shutdown", extra={"count": len(late)})


class PollingReceiver:
    """``getUpdates`` long polling; each update is handled in its own task (ordered per chat by
    the dispatcher's event isolation)."""

    def __init__(self, resources: BotResources) -> None:
        self.resources = resources
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._health: _Site | None = None

    async def start(self) -> None:
        dp, bot = self.resources.dispatcher, self.resources.bot
        started = asyncio.Event()

        async def on_startup() -> None:
            started.set()

        dp.startup.register(on_startup)
        # A webhook left over from an earlier webhook-mode run would make getUpdates fail.
        await bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(
            dp.start_polling(
                bot,
                polling_timeout=POLLING_TIMEOUT_SECONDS,
                handle_signals=False,
                close_bot_session=False,
            ),
            name="polling",
        )
        self._task.add_done_callback(self._done)
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait([waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()
        if self.resources.runtime.health_port:
            from aiohttp import web

            app = web.Application()
            _health_routes(app, self.resources)
            self._health = _Site(app, self.resources.runtime.health_port)
            await self._health.start()

    def _done(self, task: asyncio.Task[None]) -> None:
        if self.finished.done():
            return
        if task.cancelled():
            self.finished.set_result(None)
        elif (exc := task.exception()) is not None:
            self.finished.set_exception(exc)
        else:
            self.finished.set_result(None)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            with contextlib.suppress(RuntimeError):  # not polling yet
                await self.resources.dispatcher.stop_polling()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        await drain(self.resources.dispatcher)
        if self._health is not None:
            await self._health.stop()
        if not self.finished.done():
            self.finished.set_result(None)


class WebhookReceiver:
    """An aiohttp server receiving Telegram's POSTs at the path of ``webhook_url``."""

    def __init__(self, resources: BotResources) -> None:
        self.resources = resources
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sites: list[_Site] = []

    async def start(self) -> None:
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
        from aiohttp import web

        runtime, dp, bot = self.resources.runtime, self.resources.dispatcher, self.resources.bot
        if not runtime.webhook_url:
            raise ValueError("BOTFLEET_TENANT_WEBHOOK_URL is required in webhook mode")
        secret = runtime.webhook_secret.get_secret_value() if runtime.webhook_secret else None
        app = web.Application()
        SimpleRequestHandler(dp, bot, secret_token=secret).register(
            app, path=urlsplit(runtime.webhook_url).path or "/"
        )
        setup_application(app, dp, bot=bot)
        if runtime.health_port in (None, runtime.webhook_port):
            _health_routes(app, self.resources)
        self._sites.append(_Site(app, runtime.webhook_port))
        if runtime.health_port and runtime.health_port != runtime.webhook_port:
            health = web.Application()
            _health_routes(health, self.resources)
            self._sites.append(_Site(health, runtime.health_port))
        for site in self._sites:
            await site.start()
        await bot.set_webhook(
            runtime.webhook_url,
            secret_token=secret,
            allowed_updates=dp.resolve_used_update_types(),
        )

    async def stop(self) -> None:
        # The webhook stays registered: Telegram keeps the updates until the next instance is up.
        await drain(self.resources.dispatcher)
        for site in reversed(self._sites):
            await site.stop()
        if not self.finished.done():
            self.finished.set_result(None)


class IdleReceiver:
    """Receives nothing: for a process that only does the background work of a tenant."""

    def __init__(self) -> None:
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


def make_receiver(resources: BotResources) -> Receiver:
    """The receiver for the runtime's mode."""
    if resources.runtime.mode == "webhook":
        return WebhookReceiver(resources)
    return PollingReceiver(resources)
