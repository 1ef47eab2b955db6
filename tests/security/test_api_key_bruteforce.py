"""Guessing API keys against the real API: ``botfleet api`` as a subprocess, attacked over HTTP.

After ``BOTFLEET_API_AUTH_FAILURE_LIMIT`` failed attempts from one address, every request from it is
429 with ``Retry-After`` before its key is looked at (even the right key); other addresses are not
affected, and forging ``X-Forwarded-For`` does not reset the count. The count lives in Redis under
the platform's ``bf:`` prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from fleet.apikeys import ApiKeyService
from fleet.secrets import generate_master_key

REPO_ROOT = Path(__file__).resolve().parents[2]
LIMIT = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _loopback() -> str:
    """A loopback address of this test alone (the count is kept per address, in a shared Redis)."""
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def _client(source: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=source), timeout=15)


def _spawn(env: dict[str, str], cwd: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
async def api(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """``botfleet api`` on a free port; its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    env.update(
        BOTFLEET_DATABASE_URL=database_url,
        BOTFLEET_REDIS_URL=redis_url,
        BOTFLEET_MASTER_KEY=generate_master_key(),
        BOTFLEET_TENANT_ROLE_PREFIX="x" + secrets.token_hex(4) + "_",
        BOTFLEET_RUNTIME="process",
        BOTFLEET_PROCESS_STATE_DIR=str(tmp_path / "processes"),
        BOTFLEET_API_AUTH_FAILURE_LIMIT=f"{LIMIT}/minute",
        BOTFLEET_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
    )
    log = tmp_path / "api.log"
    process = _spawn(env, tmp_path, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
async def admin_key(pool: asyncpg.Pool) -> AsyncIterator[str]:
    created = await ApiKeyService(pool=pool).create(
        scopes=["admin"], name="brute-force victim", actor="test"
    )
    try:
        yield created.key
    finally:
        await pool.execute("DELETE FROM control.api_keys WHERE id = $1", created.record["id"])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_failed_key_attempts_are_throttled_per_address(
    api: str, admin_key: str, redis: Redis
) -> None:
    attacker, bystander = _loopback(), _loopback()
    plans = f"{api}/api/v1/plans"
    async with _client(attacker) as guesser:
        # Guesses count against the real address, whatever X-Forwarded-For claims.
        for n in range(LIMIT):
            answer = await guesser.get(
                plans,
                headers={
                    **_bearer(f"bfk_{secrets.token_urlsafe(24)}"),
                    "X-Forwarded-For": f"10.9.8.{n}",
                },
            )
            assert answer.status_code == 401, answer.text
        answer = await guesser.get(plans, headers=_bearer(f"bfk_{secrets.token_urlsafe(24)}"))
        assert answer.status_code == 429, answer.text
        retry_after = int(answer.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert "failed API-key attempts" in answer.json()["detail"]
        # Refused before the key is checked: even the right key gets 429 from this address.
        started = time.monotonic()
        for _ in range(50):
            answer = await guesser.get(plans, headers=_bearer(admin_key))
            assert answer.status_code == 429
        assert time.monotonic() - started < 5
        # No key at all, or a forged client address, changes nothing.
        assert (await guesser.get(plans)).status_code == 429
        forged = await guesser.get(
            plans, headers={**_bearer(admin_key), "X-Forwarded-For": bystander}
        )
        assert forged.status_code == 429

    async with _client(bystander) as other:
        assert (await other.get(plans, headers=_bearer(admin_key))).status_code == 200
        wrong = await other.get(plans, headers=_bearer(f"bfk_{secrets.token_urlsafe(24)}"))
        assert wrong.status_code == 401  # its own count, far from the limit
        assert (await other.get(plans, headers=_bearer(admin_key))).status_code == 200

    keys = [key.decode() async for key in redis.scan_iter(match=f"x*_:bf:*authfail:{attacker}*")]
    assert keys, "the failure count is not in Redis under the installation's bf:"
    for key in keys:
        await redis.delete(key)
    for key in [k async for k in redis.scan_iter(match=f"x*_:bf:*authfail:{bystander}*")]:
        await redis.delete(key)
