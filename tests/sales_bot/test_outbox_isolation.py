"""The outbox never fails silently and never blocks: a poison event is set aside and reported while
the next one is delivered; a recipient already sent to is never sent to again; Telegram's hiccups
retry, and an event out of attempts is set aside; every owner reads their own language."""

from __future__ import annotations

import logging
import secrets

import asyncpg
import pytest

from fleet.repositories import owners as owner_repo
from fleet.repositories.events import insert_event
from sandbox.telegram import TelegramSandbox, TelegramUser
from sandbox.testing import bot_id_of, new_bot_token
from schemas.events import TenantLive
from tests.support.sales_bot_support import RunningSalesBot


async def _tenant(pool: asyncpg.Pool, owners: list[int], *, locale: str = "en") -> tuple[int, str]:
    bot_id = bot_id_of(new_bot_token())
    username = f"barber{bot_id}_bot"
    tenant_id = await pool.fetchval(
        "INSERT INTO control.tenants (slug, display_name, owner_telegram_ids, locale, timezone,"
        " bot_token_enc, bot_token_fingerprint, bot_id, bot_username, db_password_enc,"
        " redis_password_enc, status, desired_state)"
        " VALUES ($1, 'Barbershop', $2, $3, 'Europe/Moscow', 'x', $4, $5, $6, 'x', 'x',"
        " 'active', 'running') RETURNING id",
        "t" + secrets.token_hex(6),
        owners,
        locale,
        secrets.token_hex(16),
        bot_id,
        username,
    )
    return int(tenant_id), username


async def _owner(sandbox: TelegramSandbox, bot: RunningSalesBot, **kw: object) -> TelegramUser:
    user = await sandbox.user(bot_id=bot.bot_id, id=secrets.randbelow(10**9) + 6 * 10**9, **kw)  # type: ignore[arg-type]
    await user.ask("/start")
    return user


async def _bot_texts(user: TelegramUser) -> list[str]:
    return [m.get("text") or "" for m in await user.messages() if m["from"] == "bot"]


async def _event(pool: asyncpg.Pool, event_id: int) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM control.events WHERE id = $1", event_id)
    assert row is not None
    return row


def _live(username: str) -> TenantLive:
    return TenantLive(bot_username=username, previous_status="provisioning")


async def test_a_poison_event_is_set_aside_and_the_next_one_is_delivered(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await _owner(telegram_sandbox, sales_bot, first_name="Ivan", language_code="en")
    tenant_id, username = await _tenant(pool, [owner.id])
    # What the worker wrote before the contract existed: the template cannot be rendered from it.
    poison = await pool.fetchval(
        "INSERT INTO control.events (tenant_id, kind, payload)"
        " VALUES ($1, 'tenant.suspended', '{\"previous_status\": \"active\"}') RETURNING id",
        tenant_id,
    )
    good = await insert_event(pool, tenant_id=tenant_id, event=_live(username))

    with caplog.at_level(logging.ERROR, logger="sales_bot.outbox"):
        assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 2
    set_aside = await _event(pool, poison)
    assert set_aside["failed_at"] is not None and set_aside["delivered_at"] is None
    assert "breaks its contract" in set_aside["last_error"]
    assert "reason" in set_aside["last_error"]
    assert (await _event(pool, good))["delivered_at"] is not None
    texts = await _bot_texts(owner)
    assert sum(f"Your bot @{username} is live" in t for t in texts) == 1
    assert not any("suspended" in t for t in texts)
    reports = [r for r in caplog.records if r.getMessage() == "event set aside as failed"]
    assert len(reports) == 1 and reports[0].event_id == poison  # type: ignore[attr-defined]
    assert reports[0].kind == "tenant.suspended"  # type: ignore[attr-defined]
    assert sales_bot.outbox.counts["failed"] == 1

    # Set aside means set aside: later passes neither retry it nor log it again.
    caplog.clear()
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 0
    assert not caplog.records


async def test_an_owner_already_sent_to_is_not_sent_to_again(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, pool: asyncpg.Pool
) -> None:
    first = await _owner(telegram_sandbox, sales_bot, first_name="Ivan", language_code="en")
    second = await _owner(telegram_sandbox, sales_bot, first_name="Olga", language_code="en")
    tenant_id, username = await _tenant(pool, [first.id, second.id])
    event_id = await insert_event(pool, tenant_id=tenant_id, event=_live(username))
    # A sales bot sent it to the first owner, recorded that, and died before the second send.
    await pool.execute(
        "UPDATE control.events SET sent_to = ARRAY[$2::bigint] WHERE id = $1", event_id, first.id
    )

    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 1
    row = await _event(pool, event_id)
    assert row["delivered_at"] is not None and list(row["sent_to"]) == [first.id, second.id]
    assert not any("is live" in t for t in await _bot_texts(first))
    assert sum("is live" in t for t in await _bot_texts(second)) == 1


async def test_telegram_hiccups_retry_and_an_event_out_of_attempts_is_set_aside(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, pool: asyncpg.Pool
) -> None:
    owner = await _owner(telegram_sandbox, sales_bot, first_name="Ivan", language_code="en")
    tenant_id, username = await _tenant(pool, [owner.id])
    event_id = await insert_event(pool, tenant_id=tenant_id, event=_live(username))

    await telegram_sandbox.inject_fault(sales_bot.bot_id, method="sendMessage", error_code=502)
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 1
    row = await _event(pool, event_id)
    assert row["attempts"] == 1 and row["failed_at"] is None and row["delivered_at"] is None
    assert row["next_attempt_at"] > await pool.fetchval("SELECT now()")  # backing off

    # Nine failures already behind it: the tenth sets it aside, and the next event still goes out.
    await pool.execute(
        "UPDATE control.events SET attempts = 9, next_attempt_at = now() WHERE id = $1", event_id
    )
    await telegram_sandbox.inject_fault(sales_bot.bot_id, method="sendMessage", error_code=502)
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 1
    row = await _event(pool, event_id)
    assert row["failed_at"] is not None and "gave up after 10 attempts" in row["last_error"]
    later = await insert_event(pool, tenant_id=tenant_id, event=_live(username))
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 1
    assert (await _event(pool, later))["delivered_at"] is not None


async def test_each_owner_reads_their_own_language(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, pool: asyncpg.Pool
) -> None:
    ivan = await _owner(telegram_sandbox, sales_bot, first_name="Ivan", language_code="en")
    olga = await _owner(telegram_sandbox, sales_bot, first_name="Olga", language_code="en")
    # Olga chose Russian in the sales bot; the bot's customers speak English (the tenant's locale).
    await owner_repo.choose(pool, olga.id, "ru")
    tenant_id, username = await _tenant(pool, [ivan.id, olga.id], locale="en")
    await insert_event(pool, tenant_id=tenant_id, event=_live(username))

    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant_id]) == 1
    assert any(f"Your bot @{username} is live" in t for t in await _bot_texts(ivan))
    assert any(f"Ваш бот @{username} работает" in t for t in await _bot_texts(olga))
