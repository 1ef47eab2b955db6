"""SQL over ``control.owners``: what the platform knows of a business owner as a person — the
language they chose in the sales bot, in which they are told about their bots."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

Executor = asyncpg.Connection | asyncpg.Pool


async def locales_of(db: Executor, telegram_ids: Iterable[int]) -> dict[int, str]:
    """The chosen language of each of ``telegram_ids`` that has one."""
    rows = await db.fetch(
        "SELECT telegram_id, locale FROM control.owners WHERE telegram_id = ANY($1::bigint[])",
        list(telegram_ids),
    )
    return {row["telegram_id"]: row["locale"] for row in rows}


async def set_locale(db: Executor, telegram_id: int, locale: str) -> None:
    """Remember the language ``telegram_id`` speaks with the sales bot."""
    await db.execute(
        "INSERT INTO control.owners (telegram_id, locale) VALUES ($1, $2)"
        " ON CONFLICT (telegram_id) DO UPDATE SET locale = EXCLUDED.locale, updated_at = now()"
        " WHERE owners.locale IS DISTINCT FROM EXCLUDED.locale",
        telegram_id,
        locale,
    )
