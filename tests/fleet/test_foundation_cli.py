"""The operator CLI: every bad input gets a one-line error, the right exit code, and leaves nothing."""

from __future__ import annotations

import asyncio
import json
import secrets

import asyncpg
import pytest
import redis as sync_redis
from typer.testing import CliRunner

from cli.main import app
from fleet.secrets import generate_master_key


def random_token() -> str:
    return f"{secrets.randbelow(10**9) + 10**9}:AA{secrets.token_urlsafe(30)[:33]}"


@pytest.fixture
def env(database_url: str, redis_url: str, role_prefix: str) -> dict[str, str]:
    return {
        "BOTFLEET_DATABASE_URL": database_url,
        "BOTFLEET_REDIS_URL": redis_url,
        "BOTFLEET_MASTER_KEY": generate_master_key(),
        "BOTFLEET_TENANT_ROLE_PREFIX": role_prefix,
    }


@pytest.fixture
def cli(env: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str, extra_env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), env={**env, **(extra_env or {})})

    return invoke


def create_args(slug: str, token: str, **overrides: str) -> list[str]:
    options = {
        "--slug": slug,
        "--name": "Ivan's <Barbershop>",
        "--owner-telegram-id": "123456789",
        "--bot-token": token,
        "--timezone": "Europe/Moscow",
        "--locale": "ru",
    } | overrides
    return ["tenants", "create", *[item for pair in options.items() for item in pair]]


def leftovers(database_url: str, role_prefix: str, slug: str) -> list[str]:
    return asyncio.run(_leftovers(database_url, role_prefix, slug))


async def _leftovers(database_url: str, role_prefix: str, slug: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        found = []
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role_prefix + slug):
            found.append("role")
        if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", role_prefix + slug):
            found.append("schema")
        if await conn.fetchval(
            "SELECT 1 FROM control.tenants WHERE slug = $1 AND deleted_at IS NULL", slug
        ):
            found.append("row")
        return found
    finally:
        await conn.close()


def test_keygen_prints_a_usable_key(cli) -> None:
    result = cli("keygen")
    assert result.exit_code == 0
    assert len(result.stdout.strip()) == 44


def test_create_list_show_delete(
    cli, unique_slug: str, database_url: str, role_prefix: str, redis_url: str
) -> None:
    token = random_token()
    created = cli(*create_args(unique_slug, token))
    assert created.exit_code == 0, created.output
    assert unique_slug in created.stdout
    assert leftovers(database_url, role_prefix, unique_slug) == ["role", "schema", "row"]
    assert token not in created.output

    listed = cli("tenants", "list", "--json")
    assert listed.exit_code == 0
    mine = [t for t in json.loads(listed.stdout) if t["slug"] == unique_slug]
    assert mine and mine[0]["status"] == "provisioning"
    assert token not in listed.stdout

    table = cli("tenants", "list")
    assert unique_slug in table.stdout

    shown = cli("tenants", "show", unique_slug)
    assert shown.exit_code == 0
    body = json.loads(shown.stdout)
    assert body["bot_token"] == f"{token.split(':')[0]}:AA…{token[-2:]}"
    assert body["display_name"] == "Ivan's <Barbershop>"
    assert token not in shown.stdout

    refused = cli("tenants", "delete", unique_slug)
    assert refused.exit_code == 2 and "--yes" in refused.output

    deleted = cli("tenants", "delete", unique_slug, "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert leftovers(database_url, role_prefix, unique_slug) == []
    client = sync_redis.Redis.from_url(redis_url)
    assert client.execute_command("ACL", "GETUSER", role_prefix + unique_slug) is None
    client.close()

    gone = cli("tenants", "show", unique_slug)
    assert gone.exit_code == 1 and "does not exist" in gone.output


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"--slug": "Bad-Slug"}, 2, "--slug: must match ^[a-z][a-z0-9_]{2,30}$"),
        ({"--slug": "ab"}, 2, "--slug: must match"),
        ({"--bot-token": "not-a-token"}, 2, "--bot-token: is not a bot token"),
        ({"--timezone": "Mars/Olympus"}, 2, "--timezone: is not a known IANA time zone"),
        ({"--locale": "de"}, 2, "--locale: Input should be 'ru' or 'en'"),
        ({"--owner-telegram-id": "-5"}, 2, "--owner-telegram-id: "),
        ({"--name": "   "}, 2, "--name: "),
        ({"--plan": "no_such_plan"}, 2, "plan_code: unknown plan 'no_such_plan'"),
    ],
)
def test_bad_input_is_refused_and_leaves_nothing(
    cli, unique_slug: str, database_url: str, role_prefix: str, overrides, code, message
) -> None:
    result = cli(*create_args(unique_slug, random_token(), **overrides))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert leftovers(database_url, role_prefix, unique_slug) == []


def test_duplicate_slug_and_reused_token_are_conflicts(
    cli, unique_slug: str, database_url: str, role_prefix: str
) -> None:
    token = random_token()
    assert cli(*create_args(unique_slug, token)).exit_code == 0
    try:
        other = unique_slug + "x"
        same_slug = cli(*create_args(unique_slug, random_token()))
        assert same_slug.exit_code == 1
        assert "slug: a tenant with this slug already exists" in same_slug.output

        same_token = cli(*create_args(other, token))
        assert same_token.exit_code == 1
        assert "bot_token: this bot token is already used by another tenant" in same_token.output
        assert leftovers(database_url, role_prefix, other) == []
    finally:
        assert cli("tenants", "delete", unique_slug, "--yes").exit_code == 0


def test_unreachable_database_is_named_without_password(cli, unique_slug: str) -> None:
    result = cli(
        *create_args(unique_slug, random_token()),
        extra_env={"BOTFLEET_DATABASE_URL": "postgresql://admin:hunter2@127.0.0.1:1/botfleet"},
    )
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/botfleet" in result.output
    assert "hunter2" not in result.output


def test_unreachable_redis_is_named_without_password(cli, unique_slug: str) -> None:
    result = cli(
        *create_args(unique_slug, random_token()),
        extra_env={"BOTFLEET_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"},
    )
    assert result.exit_code == 1
    assert "cannot connect to Redis at 127.0.0.1:1/0" in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BOTFLEET_MASTER_KEY", "short", "BOTFLEET_MASTER_KEY: key #1 is not a valid key"),
        (
            "BOTFLEET_DATABASE_URL",
            "mysql://u:secretpw@h/db",
            "BOTFLEET_DATABASE_URL: must be a postgresql:// URL",
        ),
        ("BOTFLEET_REDIS_URL", "http://h", "BOTFLEET_REDIS_URL: must be a redis://"),
    ],
)
def test_malformed_settings_are_named(cli, unique_slug: str, variable, value, message) -> None:
    result = cli(*create_args(unique_slug, random_token()), extra_env={variable: value})
    assert result.exit_code == 2
    assert message in result.output
    assert "secretpw" not in result.output


def test_missing_master_key_says_how_to_make_one(cli, unique_slug: str) -> None:
    result = cli(*create_args(unique_slug, random_token()), extra_env={"BOTFLEET_MASTER_KEY": ""})
    assert result.exit_code == 2
    assert "BOTFLEET_MASTER_KEY is not set" in result.output


def test_migrate_reports_counts(cli) -> None:
    result = cli("migrate")
    assert result.exit_code == 0, result.output
    assert "control:" in result.stdout and "tenants:" in result.stdout


def test_cli_starts_without_importing_the_bots() -> None:
    """`botfleet --help` stays fast: aiogram (seconds to import) loads only in commands that need it."""
    import subprocess
    import sys

    code = "import sys, cli.main; print(sorted(m for m in ('aiogram', 'fastapi', 'docker') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_sandbox_command_defaults_match_the_stand_in() -> None:
    import cli.sandbox
    import sandbox.yookassa

    assert cli.sandbox.DEFAULT_SHOP_ID == sandbox.yookassa.DEFAULT_SHOP_ID
    assert cli.sandbox.DEFAULT_SECRET_KEY == sandbox.yookassa.DEFAULT_SECRET_KEY
