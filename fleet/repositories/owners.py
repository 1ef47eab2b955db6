"""SQL over ``control.owners``: what the platform knows of a business owner as a person — the
language they chose in the sales bot, in which they are told about their bots."""

from __future__ import annotations

from collections.abc import Iterable

from fleet.db import Executor


async def locales_of(db: Executor, telegram_ids: Iterable[int]) -> dict[int, str]:
    """The language of each of ``telegram_ids`` that has one."""
    rows = await db.fetch(
        "SELECT telegram_id, locale FROM control.owners WHERE telegram_id = ANY($1::bigint[])",
        list(telegram_ids),
    )
    return {row["telegram_id"]: row["locale"] for row in rows}


async def seen(db: Executor, telegram_id: int, app_locale: str) -> str:
    """``telegram_id``'s app speaks ``app_locale``: remember it unless they chose a language
    themselves. Returns the language to speak with them."""
    locale = await db.fetchval(
        "INSERT INTO control.owners (telegram_id, locale) VALUES ($1, $2)"
        " ON CONFLICT (telegram_id) DO UPDATE SET"
        "   locale = CASE WHEN owners.chosen THEN owners.locale ELSE EXCLUDED.locale END,"
        "   updated_at = CASE WHEN owners.chosen OR owners.locale = EXCLUDED.locale"
        "     THEN owners.updated_at ELSE now() END"
        " RETURNING locale",
        telegram_id,
        app_locale,
    )
    return str(locale)


async def choose(db: Executor, telegram_id: int, locale: str) -> None:
    """``telegram_id`` chose ``locale`` in the sales bot: kept whatever their app says later."""
    await db.execute(
        "INSERT INTO control.owners (telegram_id, locale, chosen) VALUES ($1, $2, true)"
        " ON CONFLICT (telegram_id) DO UPDATE SET locale = EXCLUDED.locale, chosen = true,"
        " updated_at = now()",
        telegram_id,
        locale,
    )
