"""``botfleet events list|show|retry`` (issue 13): an operator finds the events the outbox set aside,
reads why, and sends them again once the cause is fixed. One-line errors: exit 2 for bad input, 1 for
what does not exist or cannot be retried. Tenants and events are set up with SQL."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from cli.main import app

OWNER = 735190462

Cli = Callable[..., Result]


def _sql(database_url: str, query: str, *args: Any) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def cli(database_url: str) -> Cli:
    runner = CliRunner()
    env = {"BOTFLEET_DATABASE_URL": database_url}

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke


@pytest.fixture
def tenant(database_url: str) -> Iterator[tuple[str, int]]:
    """A tenant row of this test alone (slug, id); deleted with its events afterwards."""
    slug = "ev" + secrets.token_hex(5)
    bot_id = secrets.randbelow(9 * 10**9) + 10**9
    [row] = _sql(
        database_url,
        "INSERT INTO control.tenants (slug, display_name, owner_telegram_ids, bot_token_enc,"
        " bot_token_fingerprint, bot_id, db_password_enc, redis_password_enc)"
        " VALUES ($1, 'Events shop', $2, 'v1:x:y', $3, $4, 'v1:x:y', 'v1:x:y') RETURNING id",
        slug,
        [OWNER],
        secrets.token_hex(16),
        bot_id,
    )
    try:
        yield slug, int(row["id"])
    finally:
        _sql(database_url, "DELETE FROM control.tenants WHERE slug = $1", slug)


def _event(database_url: str, tenant_id: int, kind: str, *, state: str, **columns: Any) -> int:
    [row] = _sql(
        database_url,
        "INSERT INTO control.events (tenant_id, kind, payload, sent_to, last_error, attempts,"
        " delivered_at, failed_at) VALUES ($1, $2, $3, $4, $5, $6,"
        " CASE WHEN $7 = 'delivered' THEN now() END, CASE WHEN $7 = 'failed' THEN now() END)"
        " RETURNING id",
        tenant_id,
        kind,
        json.dumps(columns.get("payload", {})),
        columns.get("sent_to", []),
        columns.get("last_error"),
        columns.get("attempts", 0),
        state,
    )
    return int(row["id"])


def test_operator_finds_reads_and_retries_a_failed_event(
    cli: Cli, database_url: str, tenant: tuple[str, int]
) -> None:
    slug, tenant_id = tenant
    delivered = _event(database_url, tenant_id, "tenant.live", state="delivered", sent_to=[OWNER])
    pending = _event(database_url, tenant_id, "payment.succeeded", state="pending")
    failed = _event(
        database_url,
        tenant_id,
        "tenant.suspended",
        state="failed",
        payload={"previous_status": "active", "owner_telegram_ids": [OWNER]},
        sent_to=[OWNER],
        attempts=1,
        last_error="template event_tenant_suspended: 'delete_at' is undefined",
    )

    table = cli("events", "list", "--failed", "--tenant", slug)
    assert table.exit_code == 0, table.output
    header, *lines = table.stdout.splitlines()
    assert header.split() == [
        "ID",
        "KIND",
        "TENANT",
        "STATE",
        "ATTEMPTS",
        "RECIPIENTS_TOLD",
        "CREATED_AT",
        "LAST_ERROR",
    ]
    assert len(lines) == 1 and lines[0].split()[:6] == [
        str(failed),
        "tenant.suspended",
        slug,
        "failed",
        "1",
        "1",
    ]
    assert "delete_at" in lines[0]

    everything = cli("events", "list", "--tenant", slug, "--json")
    assert everything.exit_code == 0, everything.output
    items = json.loads(everything.stdout)
    assert [(i["id"], i["state"]) for i in items] == [
        (failed, "failed"),
        (pending, "pending"),
        (delivered, "delivered"),
    ]
    for flag, expected in (("--pending", pending), ("--delivered", delivered)):
        listed = json.loads(cli("events", "list", flag, "--tenant", slug, "--json").stdout)
        assert [i["id"] for i in listed] == [expected], flag
    by_kind = json.loads(
        cli("events", "list", "--tenant", slug, "--kind", "tenant.live", "--json").stdout
    )
    assert [i["id"] for i in by_kind] == [delivered]
    assert (
        len(json.loads(cli("events", "list", "--tenant", slug, "--limit", "2", "--json").stdout))
        == 2
    )
    assert str(OWNER) not in everything.stdout  # who the owners are is not shown

    shown = cli("events", "show", str(failed))
    assert shown.exit_code == 0, shown.output
    event = json.loads(shown.stdout)
    assert event["state"] == "failed" and event["tenant"] == slug
    assert event["payload"]["previous_status"] == "active"
    assert event["recipients_told"] == 1 and str(OWNER) not in shown.stdout

    retried = cli("events", "retry", str(failed))
    assert retried.exit_code == 0, retried.output
    assert f"event {failed} (tenant.suspended) queued for delivery again" in retried.stdout
    [row] = _sql(
        database_url,
        "SELECT failed_at, attempts, sent_to, next_attempt_at <= now() AS due"
        " FROM control.events WHERE id = $1",
        failed,
    )
    assert row["failed_at"] is None and row["attempts"] == 0 and row["due"]
    assert row["sent_to"] == [OWNER]  # the owner already told is not told again
    [audited] = _sql(
        database_url,
        "SELECT actor, details FROM control.audit_log WHERE action = 'event.retry' AND target = $1",
        f"event:{failed}",
    )
    assert audited["actor"] == "cli"
    assert json.loads(cli("events", "list", "--failed", "--tenant", slug, "--json").stdout) == []

    again = cli("events", "retry", str(failed))
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        f"error: state: event {failed} is pending; only failed events are retried"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("events", "show", "9223372036854775807"), 1, "does not exist"),
        (("events", "retry", "9223372036854775807"), 1, "does not exist"),
        (
            ("events", "list", "--tenant", "zz_nobody_here"),
            1,
            "tenant 'zz_nobody_here' does not exist",
        ),
        (("events", "list", "--failed", "--delivered"), 2, "at most one of"),
        (("events", "list", "--limit", "0"), 2, "--limit"),
        (("events", "show", "abc"), 2, "Invalid value for 'event_id'"),
        (("events", "retry", "0"), 2, "Invalid value for 'event_id'"),
    ],
)
def test_mistakes_get_one_line_and_an_exit_code(
    cli: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    if code == 1:  # our own errors are one line
        assert len(result.stderr.strip().splitlines()) == 1


def test_empty_listing_says_so(cli: Cli, tenant: tuple[str, int]) -> None:
    result = cli("events", "list", "--failed", "--tenant", tenant[0])
    assert result.exit_code == 0, result.output
    assert "(no events)" in result.stdout
