"""``botfleet apikeys create|list|revoke`` and ``botfleet api --help``."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest
from typer.testing import CliRunner

from cli.main import app
from fleet.apikeys import hash_key


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("BOTFLEET_DATABASE_URL", database_url)
    name = "cli-" + secrets.token_hex(4)
    yield name

    async def cleanup() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("DELETE FROM control.api_keys WHERE name = $1", name)
        finally:
            await conn.close()

    asyncio.run(cleanup())


def _row(database_url: str, key_hash: str) -> asyncpg.Record | None:
    async def fetch() -> asyncpg.Record | None:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchrow(
                "SELECT * FROM control.api_keys WHERE key_hash = $1", key_hash
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_apikeys_create_list_revoke(cli_env: str, database_url: str) -> None:
    runner = CliRunner()
    made = runner.invoke(
        app, ["apikeys", "create", "--scope", "read", "--scope", "sales", "--name", cli_env]
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("bfk_")
    row = _row(database_url, hash_key(key))
    assert row is not None
    assert list(row["scopes"]) == ["read", "sales"]

    listed = runner.invoke(app, ["apikeys", "list", "--json"])
    assert listed.exit_code == 0
    assert cli_env in listed.stdout
    assert key not in listed.stdout

    revoked = runner.invoke(app, ["apikeys", "revoke", str(row["id"])])
    assert revoked.exit_code == 0
    assert _row(database_url, hash_key(key))["revoked_at"] is not None
    assert cli_env not in runner.invoke(app, ["apikeys", "list", "--json"]).stdout
    assert cli_env in runner.invoke(app, ["apikeys", "list", "--all"]).stdout


def test_apikeys_errors_are_one_line(cli_env: str) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["apikeys", "create", "--scope", "root", "--name", cli_env])
    assert bad.exit_code == 2
    assert "unknown scope 'root'" in bad.output
    missing = runner.invoke(app, ["apikeys", "revoke", "9223372036854775806"])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_api_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["api", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output
