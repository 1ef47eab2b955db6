"""The Telegram Bot API emulator as a server you can start in a test or from the CLI.

Example::

    async with TelegramEmulator.start(host="127.0.0.1", port=0) as tg:
        bot = Bot(token, session=AiohttpSession(api=tg.api_server))
        ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from sandbox._http import RunningApp, serve_app
from sandbox.telegram.botapi import BotApi
from sandbox.telegram.control import ControlApi, control_errors
from sandbox.telegram.models import BotAccount, UserAccount
from sandbox.telegram.params import Params
from sandbox.telegram.ratelimit import RateLimits
from sandbox.telegram.store import WorldStore
from sandbox.telegram.webhook import WebhookDelivery
from sandbox.telegram.world import EmulatorConfig, TelegramWorld
from sandbox.web import WebPage

logger = logging.getLogger(__name__)

# Telegram accepts uploads up to 50 MB.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class TelegramEmulator:
    """An in-memory Telegram: the Bot API for bots, the control API and the web page for people."""

    def __init__(
        self, *, config: EmulatorConfig | None = None, data_dir: Path | None = None
    ) -> None:
        self.world = TelegramWorld(config=config)
        # With a directory, users, bots and chats outlive a restart (see sandbox/telegram/store.py).
        self.store = (
            None
            if data_dir is None
            else WorldStore(data_dir, history_limit=self.world.config.history_limit)
        )
        self._closing = asyncio.Event()
        self.webhooks = WebhookDelivery(self.world, execute=self._execute)
        self.bot_api = BotApi(self.world, webhooks=self.webhooks, closing=self._closing)
        self.control = ControlApi(self.world)
        self.web_page = WebPage()
        self._running: RunningApp | None = None

    async def _execute(self, bot: BotAccount, method: str, params: Params) -> Any:
        return await self.bot_api.execute(bot, method, params)

    def make_app(self) -> web.Application:
        """The aiohttp application serving both APIs (usable with aiohttp's test utilities)."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES, middlewares=[control_errors])
        app.add_routes(self.bot_api.routes())
        app.add_routes(self.control.routes())
        app.add_routes(self.web_page.routes())
        return app

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running emulator."""
        if self._running is None:
            raise RuntimeError("the emulator is not running")
        return self._running.base_url

    @property
    def web_url(self) -> str:
        """The sandbox web page, where a person chats with the bots: ``http://host:port/``."""
        return self.base_url + "/"

    @property
    def api_server(self) -> TelegramAPIServer:
        """aiogram's server description: ``AiohttpSession(api=tg.api_server)``."""
        return TelegramAPIServer.from_base(self.base_url)

    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; returns the base URL (``port=0`` picks a free port)."""
        if self._running is not None:
            raise RuntimeError("the emulator is already running")
        self._closing.clear()
        if self.store is not None:
            await self.store.load(self.world)
            self.store.start(self.world)
        self._running = await serve_app(self.make_app(), host=host, port=port)
        logger.info("telegram emulator listening url=%s", self._running.base_url)
        return self._running.base_url

    async def stop(self) -> None:
        """Wake long polls, stop webhook delivery and close the server."""
        if self._running is None:
            return
        self._closing.set()
        for bot in self.world.bots.values():
            bot.update_signal.bump()
        await self.webhooks.close()
        self.world.close()
        running, self._running = self._running, None
        await running.stop()
        if self.store is not None:
            await self.store.close(self.world)

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: EmulatorConfig | None = None,
        rate_limits: RateLimits | None = None,
        data_dir: Path | None = None,
    ) -> AsyncIterator[TelegramEmulator]:
        """Run an emulator for the duration of the ``async with`` block.

        With ``data_dir``, the emulator starts from what it saved there and keeps saving to it."""
        if rate_limits is not None:
            config = config or EmulatorConfig()
            config.rate_limits = rate_limits
        emulator = cls(config=config, data_dir=data_dir)
        await emulator.serve(host=host, port=port)
        try:
            yield emulator
        finally:
            await emulator.stop()

    # In-process shortcuts for tests that hold the emulator object itself.

    def register_bot(
        self,
        token: str,
        *,
        username: str,
        first_name: str | None = None,
        idle_reply: dict[str, str] | None = None,
    ) -> BotAccount:
        """Register a bot directly (same as ``POST /sandbox/bots``)."""
        return self.world.register_bot(
            token=token, username=username, first_name=first_name, idle_reply=idle_reply
        )

    def create_user(self, first_name: str = "Test", **fields: Any) -> UserAccount:
        """Create a user directly (same as ``POST /sandbox/users``)."""
        return self.world.create_user(first_name=first_name, **fields)

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Replace flood limits (same as ``PUT /sandbox/rate-limits``)."""
        self.world.limiter.configure(limits)
