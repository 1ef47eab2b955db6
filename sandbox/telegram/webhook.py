"""Webhook delivery: POST each queued update to the bot's URL, in order, retrying on failure.

Like Telegram, an update stays queued until the bot's server answers 2xx, failures are reported by
``getWebhookInfo`` (``last_error_date``/``last_error_message``) and retried with growing delays, and a
2xx answer may itself carry one Bot API call (``{"method": "sendMessage", ...}``, JSON or
multipart, which aiogram sends when it handles an update inside the webhook request).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from sandbox.telegram.botapi import parse_body, read_multipart
from sandbox.telegram.errors import BotAPIError
from sandbox.telegram.models import BotAccount
from sandbox.telegram.params import Params, Upload
from sandbox.telegram.world import TelegramWorld

logger = logging.getLogger(__name__)

Executor = Callable[[BotAccount, str, Params], Awaitable[Any]]


class WebhookDelivery:
    """One delivery task per bot with a webhook; implements ``WebhookControl``."""

    def __init__(self, world: TelegramWorld, *, execute: Executor) -> None:
        self.world = world
        self.execute = execute
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def start(self, bot: BotAccount) -> None:
        """Deliver ``bot``'s updates until its webhook is deleted (idempotent)."""
        task = self._tasks.get(bot.id)
        if task is None or task.done():
            self._tasks[bot.id] = asyncio.create_task(
                self._run(bot), name=f"sandbox-webhook-{bot.id}"
            )

    def stop(self, bot: BotAccount) -> None:
        """Stop delivering for ``bot``; undelivered updates stay queued."""
        task = self._tasks.pop(bot.id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Stop every delivery task and close the HTTP session."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.world.config.webhook_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _run(self, bot: BotAccount) -> None:
        failures = 0
        config = self.world.config
        while bot.webhook is not None and self.world.bots.get(bot.id) is bot:
            if not bot.updates:
                await bot.update_signal.wait_past(bot.update_signal.version, 30.0)
                continue
            update = bot.updates[0]
            if await self._deliver(bot, update):
                failures = 0
                self.world.fetched(bot, [update])
                if bot.updates and bot.updates[0] is update:
                    bot.updates.popleft()
                continue
            delay = min(config.webhook_retry_max, config.webhook_retry_initial * 2**failures)
            failures += 1
            await asyncio.sleep(delay)

    async def _deliver(self, bot: BotAccount, update: dict[str, Any]) -> bool:
        hook = bot.webhook
        if hook is None:
            return False
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._client().post(
                hook.url, data=json.dumps(update), headers=headers
            ) as resp:
                if not 200 <= resp.status < 300:
                    self._failed(
                        bot, f"Wrong response from the webhook: {resp.status} {resp.reason}"
                    )
                    return False
                call = await self._reply_call(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._failed(bot, f"Connection failed: {type(exc).__name__}")
            return False
        if call is not None:
            await self._run_reply(bot, *call)
        return True

    def _failed(self, bot: BotAccount, message: str) -> None:
        if bot.webhook is not None:
            bot.webhook.last_error_date = self.world.now()
            bot.webhook.last_error_message = message
        logger.info("webhook delivery failed bot=%s reason=%s", bot.id, message)

    @staticmethod
    async def _reply_call(
        resp: aiohttp.ClientResponse,
    ) -> tuple[str, dict[str, Any], dict[str, Upload]] | None:
        uploads: dict[str, Upload] = {}
        if resp.content_type.startswith("multipart/"):
            values, uploads = await read_multipart(aiohttp.MultipartReader.from_response(resp))
        else:
            try:
                values = parse_body(resp.content_type, await resp.read())
            except BotAPIError:
                return None
        method = values.pop("method", None)
        if not isinstance(method, str) or not method:
            return None
        return method, values, uploads

    async def _run_reply(
        self, bot: BotAccount, method: str, values: dict[str, Any], uploads: dict[str, Upload]
    ) -> None:
        # Telegram gives the bot no way to learn the outcome of a reply call; errors are dropped.
        try:
            await self.execute(bot, method, Params(values, uploads))
        except BotAPIError as error:
            logger.info("webhook reply %s failed bot=%s: %s", method, bot.id, error.description)
