"""The demo bots of ``botfleet up``: bot tokens to sell, which answer for themselves until sold.

In Telegram a bot nobody runs is silent, which in the sandbox looks broken: a person opens "Demo 1"
on the web page, writes /start and gets nothing. The emulator answers for such a bot instead (its
``idle_reply``, sent when a message stays unfetched; see ``TelegramWorld``), saying what it is and
where to buy it. Once sold, its tenant bot fetches the updates and the emulator stays out.
"""

from __future__ import annotations


def not_sold_reply(sales_bot_username: str) -> dict[str, str]:
    """The idle reply of a demo bot, per language code (``""`` for any other language)."""
    english = (
        "This demo bot is not sold yet, so nobody runs it (or its subscription has ended). Buy "
        f"it in @{sales_bot_username} with this bot's token (botfleet up printed it at start), "
        "and it will answer here."
    )
    return {
        "": english,
        "en": english,
        "ru": (
            "Этот демо-бот ещё не продан, и его никто не запускает (или подписка закончилась). Купите "
            f"его в @{sales_bot_username} с токеном этого бота (его напечатал botfleet up при "
            "запуске), и он ответит здесь."
        ),
    }
