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
        "This demo bot is not running: it has not been sold yet (or its subscription has "
        f"ended). Buy it in @{sales_bot_username} with this bot's token (`botfleet up` prints "
        "it), and it will answer here."
    )
    return {
        "": english,
        "en": english,
        "ru": (
            "Этот демо-бот не запущен: его ещё не купили (или подписка закончилась). Купите его "
            f"в @{sales_bot_username} с токеном этого бота (его печатает `botfleet up`), и он "
            "ответит здесь."
        ),
    }
