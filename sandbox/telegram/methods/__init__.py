"""Bot API method handlers, one module per family, merged into :data:`METHODS`.

A handler is ``async def handler(ctx: CallContext, params: Params) -> Any``; it returns the
``result`` of a successful call or raises :class:`~sandbox.telegram.errors.BotAPIError`. Method names
are matched case-insensitively, as Telegram does.
"""

from __future__ import annotations

from sandbox.telegram.methods import bot_settings, editing, messages, payments, updates
from sandbox.telegram.methods.base import CallContext, Handler, WebhookControl

METHODS: dict[str, Handler] = {
    name.lower(): handler
    for module in (bot_settings, editing, messages, payments, updates)
    for name, handler in module.METHODS.items()
}

__all__ = ["METHODS", "CallContext", "Handler", "WebhookControl"]
