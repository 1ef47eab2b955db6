"""What the sales bot tests share besides fixtures (kept out of conftest so tests can import it)."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot

from fleet.billing.wiring import Billing
from sales_bot.outbox import OutboxDelivery


@dataclass
class RunningSalesBot:
    """The sales bot under test: its aiogram bot, id, billing services and outbox."""

    bot: Bot
    bot_id: int
    billing: Billing
    outbox: OutboxDelivery
