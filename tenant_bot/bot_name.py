"""The bot's name in Telegram follows the business name, so chat lists show "Barbershop Ivan".

A bot's token is bought with whatever name it was created with ("Demo 1", "my_test_bot"); customers
see that name in their chat list. The bot sets its own name (``setMyName``, no language: every app)
to the business name at start and whenever the owner renames the business. Telegram limits how often
a bot may rename itself, so the name is read first and set only when it differs; a refusal (flood
control, a network error) is logged and the bot works on under its old name.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

log = logging.getLogger(__name__)

# Telegram's limit for a bot's name.
MAX_BOT_NAME = 64


async def publish_name(bot: Bot, business_name: str) -> bool:
    """Make the bot's Telegram name ``business_name``; True when it was changed."""
    name = business_name.strip()[:MAX_BOT_NAME]
    if not name:
        return False
    try:
        if (await bot.get_my_name()).name == name:
            return False
        await bot.set_my_name(name=name)
    except TelegramAPIError as exc:
        log.warning("setMyName failed", extra={"error": type(exc).__name__})
        return False
    log.info("bot name set to the business name")
    return True
