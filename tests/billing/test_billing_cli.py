"""``botfleet plans create|list`` and ``botfleet payments list``."""

from __future__ import annotations

import asyncio
import json
import secrets

import asyncpg
import pytest
from typer.testing import CliRunner

from cli.main import app
from fleet.secrets import generate_master_key


@pytest.fixture
def cli(database_url: str, redis_url: str):
    env = {
        "BOTFLEET_DATABASE_URL": database_url,
        "BOTFLEET_REDIS_URL": redis_url,
        "BOTFLEET_MASTER_KEY": generate_master_key(),
    }
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), env=env)


@pytest.fixture
def plan_code(database_url: str):
    code = "c" + secrets.token_hex(5)
    yield code

    async def cleanup() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("DELETE FROM control.plans WHERE code = $1", code)
        finally:
            await conn.close()

    asyncio.run(cleanup())


def test_plans_create_and_list(cli, plan_code: str) -> None:
    created = cli("plans", "create", "--code", plan_code, "--name", "Pro", "--price", "1490.50")
    assert created.exit_code == 0, created.output
    assert f"created plan {plan_code}: 1490.50 RUB / 30 days" in created.output
    listed = cli("plans", "list", "--json")
    item = next(p for p in json.loads(listed.output) if p["code"] == plan_code)
    assert item["price"] == "1490.50" and item["period_days"] == 30
    again = cli("plans", "create", "--code", plan_code, "--name", "Pro", "--price", "1")
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--price", "9.999", "at most 2 decimals"),
        ("--price", "abc", "not a number"),
        ("--code", "Bad Code", "--code"),
        ("--currency", "rub", "three capital letters"),
    ],
)
def test_plans_create_refuses_bad_input(cli, option: str, value: str, message: str) -> None:
    args = {"--code": "okcode", "--name": "Pro", "--price": "10", "--currency": "RUB"}
    args[option] = value
    result = cli("plans", "create", *[x for pair in args.items() for x in pair])
    assert result.exit_code == 2 and message in result.output


def test_payments_list(cli) -> None:
    result = cli("payments", "list", "--limit", "5")
    assert result.exit_code == 0 and "CREATED_AT" in result.output
    missing = cli("payments", "list", "--tenant", "no_such_tenant")
    assert missing.exit_code == 1 and "does not exist" in missing.output
