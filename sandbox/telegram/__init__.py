"""Telegram Bot API emulator: many bots, long polling and webhooks, plus a control API.

Public API::

    from sandbox.telegram import TelegramEmulator, TelegramSandbox, RateLimits, EmulatorConfig

    async with TelegramEmulator.start(port=0) as tg:
        tg.base_url       # http://127.0.0.1:<port>; the Bot API is at {base_url}/bot<token>/<method>
        tg.api_server     # aiogram TelegramAPIServer for AiohttpSession(api=...)
"""

from sandbox.telegram.client import SandboxError, TelegramSandbox, TelegramUser
from sandbox.telegram.ratelimit import RateLimits
from sandbox.telegram.server import TelegramEmulator
from sandbox.telegram.world import EmulatorConfig, TelegramWorld

__all__ = [
    "EmulatorConfig",
    "RateLimits",
    "SandboxError",
    "TelegramEmulator",
    "TelegramSandbox",
    "TelegramUser",
    "TelegramWorld",
]
