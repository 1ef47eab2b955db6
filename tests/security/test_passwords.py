"""Passwords with any character work, badly encoded URLs get a one-line error, and placeholders from
``.env.example`` are refused at start-up (issue 14, item 5).

Real servers: a PostgreSQL role and a Redis ACL user with such passwords are created here under unique
names and dropped afterwards. The local PostgreSQL trusts local connections, so the tests also read
back the password that actually reached asyncpg and redis-py.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis as sync_redis
from typer.testing import CliRunner

from cli.common import open_resources
from cli.main import app
from fleet.secrets import generate_master_key
from fleet.settings import load_settings

# Every character that used to break a URL, plus a space and a percent sign.
NASTY = "p+a/s=s#w@o:r%d ?x"
PLACEHOLDER = "change-me-long-random"  # what .env.example ships


@dataclass(frozen=True)
class Login:
    user: str
    password: str


def _with_user(url: str, user: str, *, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{user}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(
        parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path)
    )


@pytest.fixture
async def pg_login(database_url: str) -> AsyncIterator[Login]:
    """A LOGIN role (unique name) with a nasty password owning a database of its own."""
    login = Login(user="pwtest_" + secrets.token_hex(5), password=NASTY + secrets.token_hex(4))
    conn = await asyncpg.connect(database_url)
    try:
        literal = await conn.fetchval("SELECT quote_literal($1::text)", login.password)
        await conn.execute(f'CREATE ROLE "{login.user}" LOGIN PASSWORD {literal}')
        await conn.execute(f'CREATE DATABASE "{login.user}" OWNER "{login.user}"')
        yield login
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{login.user}" WITH (FORCE)')
        await conn.execute(f'DROP ROLE IF EXISTS "{login.user}"')
        await conn.close()


@pytest.fixture
def redis_login(redis_url: str) -> Iterator[Login]:
    """A Redis ACL user (unique name) with a nasty password; Redis checks it for real."""
    login = Login(user="pwtest_" + secrets.token_hex(5), password=NASTY + secrets.token_hex(4))
    admin = sync_redis.Redis.from_url(redis_url)
    admin.acl_setuser(
        login.user,
        enabled=True,
        passwords=[f"+{login.password}"],
        commands=["+ping", "+acl|whoami"],
    )
    try:
        yield login
    finally:
        admin.acl_deluser(login.user)
        admin.close()


def _redis_url_for(redis_url: str, user: str) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port or 6379}"))


async def test_passwords_given_apart_reach_postgres_and_redis_intact(
    database_url: str, redis_url: str, pg_login: Login, redis_login: Login
) -> None:
    # As compose passes them: the raw password inside each URL, and again on its own.
    config = load_settings(
        database_url=_with_user(database_url, f"{pg_login.user}:{pg_login.password}"),
        database_password=pg_login.password,
        redis_url=_redis_url_for(redis_url, f"{redis_login.user}:{redis_login.password}"),
        redis_password=redis_login.password,
        master_key=generate_master_key(),
    )
    async with open_resources(config, pool_size=1) as res:
        async with res.pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == pg_login.user
            # What asyncpg parsed from the URL and sent (trust auth would accept anything).
            assert conn._params.password == pg_login.password
        assert (await res.redis.execute_command("ACL", "WHOAMI")).decode() == redis_login.user
        assert res.redis.connection_pool.connection_kwargs["password"] == redis_login.password


async def test_percent_encoded_url_passwords_work(
    database_url: str, redis_url: str, pg_login: Login, redis_login: Login
) -> None:
    from urllib.parse import quote

    config = load_settings(
        database_url=_with_user(
            database_url, f"{pg_login.user}:{quote(pg_login.password, safe='')}"
        ),
        redis_url=_redis_url_for(
            redis_url, f"{redis_login.user}:{quote(redis_login.password, safe='')}"
        ),
        master_key=generate_master_key(),
    )
    async with open_resources(config, pool_size=1) as res:
        async with res.pool.acquire() as conn:
            assert conn._params.password == pg_login.password
        assert (await res.redis.execute_command("ACL", "WHOAMI")).decode() == redis_login.user


def test_botfleet_migrate_runs_with_a_nasty_password(
    tmp_path: Path, database_url: str, pg_login: Login
) -> None:
    """The whole CLI, as compose runs it: `botfleet migrate` in a database the role owns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    env |= {
        "BOTFLEET_DATABASE_URL": _with_user(
            database_url, f"{pg_login.user}:{pg_login.password}", database=pg_login.user
        ),
        "BOTFLEET_DATABASE_PASSWORD": pg_login.password,
        "BOTFLEET_TENANT_ROLE_PREFIX": "pwt_",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "botfleet"), "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "control:" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("raw", ["a/b", "a#b", "a@b", "a%zz", "a?b"])
@pytest.mark.parametrize(
    ("var", "url"),
    [
        ("BOTFLEET_DATABASE_URL", "postgresql://botfleet:{}@127.0.0.1:5432/botfleet"),
        ("BOTFLEET_REDIS_URL", "redis://default:{}@127.0.0.1:6379/0"),
    ],
)
def test_an_unencoded_url_password_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str, url: str, raw: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["migrate"], env={var: url.format(raw), "BOTFLEET_MASTER_KEY": generate_master_key()}
    )
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {var}: cannot be parsed: percent-encode")
    assert "+ -> %2B" in lines[0]
    assert raw not in lines[0].replace("e.g.", "")  # the value is never echoed


@pytest.mark.parametrize("command", [["api"], ["worker"]])
@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("BOTFLEET_DATABASE_PASSWORD", PLACEHOLDER, "BOTFLEET_DATABASE_PASSWORD"),
        ("BOTFLEET_REDIS_PASSWORD", PLACEHOLDER, "BOTFLEET_REDIS_PASSWORD"),
        ("BOTFLEET_MASTER_KEY", "change-me", "BOTFLEET_MASTER_KEY"),
        ("BOTFLEET_YOOKASSA_SECRET_KEY", "live_...", "BOTFLEET_YOOKASSA_SECRET_KEY"),
    ],
)
def test_services_refuse_placeholder_secrets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    command: list[str],
    var: str,
    value: str,
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "BOTFLEET_DATABASE_URL": database_url,
        "BOTFLEET_REDIS_URL": redis_url,
        "BOTFLEET_MASTER_KEY": generate_master_key(),
        var: value,
    }
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {named}: still holds a placeholder from .env.example")
    assert "Traceback" not in result.output


def test_compose_placeholder_in_the_url_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["api"],
        env={
            "BOTFLEET_DATABASE_URL": f"postgresql://botfleet:{PLACEHOLDER}@127.0.0.1/botfleet",
            "BOTFLEET_REDIS_URL": "redis://default:secret@127.0.0.1:6379/0",
            "BOTFLEET_MASTER_KEY": generate_master_key(),
        },
    )
    assert result.exit_code == 2, result.output
    assert "BOTFLEET_DATABASE_URL: still holds a placeholder" in result.output
    assert "BOTFLEET_REDIS_URL: still holds a placeholder" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_a_declared_sandbox_may_use_placeholder_passwords() -> None:
    config = load_settings(
        database_url="postgresql://botfleet:secret@127.0.0.1:5432/botfleet",
        redis_password=PLACEHOLDER,
        redis_url="redis://127.0.0.1:6379/0",
        sandbox=True,
    )
    assert urlsplit(config.redis_url or "").password == PLACEHOLDER
