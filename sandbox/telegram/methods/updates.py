"""Receiving updates: long polling (getUpdates) and webhooks (set/delete/getWebhookInfo)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sandbox.telegram.errors import bad_request, conflict, unauthorized
from sandbox.telegram.methods.base import CallContext
from sandbox.telegram.models import DEFAULT_UPDATE_TYPES, BotAccount, WebhookConfig
from sandbox.telegram.params import Params

_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def confirm_updates(bot: BotAccount, offset: int | None) -> None:
    """Forget updates below ``offset`` (a negative offset keeps only the last ``-offset``)."""
    if offset is None:
        return
    if offset < 0:
        while len(bot.updates) > -offset:
            bot.updates.popleft()
        return
    while bot.updates and bot.updates[0]["update_id"] < offset:
        bot.updates.popleft()


def _allowed(params: Params) -> frozenset[str] | None:
    allowed = params.json("allowed_updates")
    if allowed is None:
        return None
    if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
        raise bad_request("can't parse allowed updates JSON object")
    return frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES


async def get_updates(ctx: CallContext, params: Params) -> list[dict[str, Any]]:
    """``getUpdates`` with real long polling: waits up to ``timeout`` seconds for an update."""
    bot = ctx.bot
    if bot.webhook is not None:
        raise conflict(
            "can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first"
        )
    offset = params.int("offset")
    limit = min(100, max(1, params.int("limit") or 100))
    timeout = max(0, params.int("timeout") or 0)
    allowed = _allowed(params)
    if allowed is not None:
        bot.allowed_updates = allowed
    confirm_updates(bot, offset)
    ctx.world.mark_run(bot)
    # A newer getUpdates terminates an older one, which is how Telegram reports two pollers.
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.update_signal.bump()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if ctx.world.bots.get(bot.id) is not bot:
            raise unauthorized()
        if bot.poll_generation != generation:
            raise conflict(
                "terminated by other getUpdates request; "
                "make sure that only one bot instance is running"
            )
        if bot.webhook is not None:
            raise conflict("webhook is active")
        if bot.updates:
            batch = list(bot.updates)[:limit]
            ctx.world.fetched(bot, batch)
            return batch
        remaining = deadline - loop.time()
        if remaining <= 0 or ctx.closing.is_set():
            return []
        await bot.update_signal.wait_past(bot.update_signal.version, remaining)


async def set_webhook(ctx: CallContext, params: Params) -> bool:
    """``setWebhook``; plain ``http://`` is accepted because sandbox bots listen locally."""
    bot = ctx.bot
    url = params.str("url") or ""
    if not url:
        return await delete_webhook(ctx, params)
    if not re.match(r"^https?://[^/\s]+", url):
        raise bad_request("bad webhook: Webhook URL is invalid")
    secret = params.str("secret_token")
    if secret is not None and not _SECRET.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.int("max_connections") or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    allowed = _allowed(params)
    if allowed is not None:
        bot.allowed_updates = allowed
    if params.bool("drop_pending_updates"):
        bot.updates.clear()
    ctx.world.mark_run(bot)
    bot.webhook = WebhookConfig(
        url=url,
        secret_token=secret,
        max_connections=max_connections,
        ip_address=params.str("ip_address"),
    )
    bot.update_signal.bump()
    ctx.webhooks.start(bot)
    return True


async def delete_webhook(ctx: CallContext, params: Params) -> bool:
    """``deleteWebhook`` (optionally dropping pending updates)."""
    bot = ctx.bot
    bot.webhook = None
    ctx.webhooks.stop(bot)
    if params.bool("drop_pending_updates"):
        bot.updates.clear()
    bot.update_signal.bump()
    return True


async def get_webhook_info(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``getWebhookInfo``, including the last delivery error."""
    bot = ctx.bot
    info: dict[str, Any] = {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.updates),
    }
    hook = bot.webhook
    if hook is None:
        return info
    info["url"] = hook.url
    info["max_connections"] = hook.max_connections
    if hook.ip_address:
        info["ip_address"] = hook.ip_address
    if hook.last_error_date is not None:
        info["last_error_date"] = hook.last_error_date
        info["last_error_message"] = hook.last_error_message
    if bot.allowed_updates != DEFAULT_UPDATE_TYPES:
        info["allowed_updates"] = sorted(bot.allowed_updates)
    return info


METHODS = {
    "getUpdates": get_updates,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
}
