"""Issue 14, item 3: tenant containers never sit on the host network.

Two real tenants are provisioned by the docker runtime on its default network (a bridge the runtime
creates, inter-container traffic off). From inside tenant A's container, with ``docker exec``:

- a loopback-only host service (what the API, the sandbox's control port of a production-like
  install, the worker's health endpoint and every other 127.0.0.1 service look like) is unreachable,
  through the gateway and through ``host.docker.internal``;
- tenant B's container is unreachable, though something listens in it;
- there is no Docker socket;
- PostgreSQL and Redis answer with A's own credentials (through the runtime's loopback relay, since
  they listen on 127.0.0.1 here);
- the bot answers /start through the Telegram emulator (also on 127.0.0.1, relayed).

What cannot hold on this machine is recorded rather than asserted: PostgreSQL trusts every
127.0.0.1 login here (``pg_hba``: trust) and the relay's connections come from 127.0.0.1, so a
superuser login through the relay is refused only where PostgreSQL checks passwords (compose does).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.runtimes.base import Runtime
from deploy_worker.runtimes.docker import HOST_ALIAS
from deploy_worker.spec import DEFAULT_TENANT_NETWORK, SECRETS_DIR
from fleet.secrets import SecretBox
from fleet.settings import Settings
from sandbox.telegram import TelegramSandbox
from tests.support.dw_helpers import running_worker, tenant_row, wait_status

pytestmark = pytest.mark.docker

# Connects to host:port from inside the container; prints "open" or the error's name.
PROBE = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=3).close()
    print("open")
except OSError as exc:
    print(type(exc).__name__)
"""

CONNECT_PG = """
import asyncio, asyncpg, sys
url = open(sys.argv[1]).read().strip()
user = sys.argv[2] if len(sys.argv) > 2 else None
async def main():
    kwargs = {"user": user, "password": ""} if user else {}
    conn = await asyncpg.connect(url, timeout=5, **kwargs)
    print(await conn.fetchval("SELECT current_user"))
    await conn.close()
try:
    asyncio.run(main())
except Exception as exc:
    print("refused", type(exc).__name__)
"""

CONNECT_REDIS = """
import redis, sys
url = open(sys.argv[1]).read().strip()
client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
client.set(sys.argv[2] + "netprobe", "ok", ex=60)
print(client.get(sys.argv[2] + "netprobe"))
"""


@pytest.fixture
def runtime_kind(docker_engine: Any) -> str:
    return "docker"


@pytest.fixture
async def loopback_service() -> AsyncIterator[int]:
    """A TCP service on the host's 127.0.0.1, as the API and the other platform services listen by
    default (``api_host``, ``health_host``): its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nsecret platform data")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def _exec(container: Any, *argv: str, user: str | None = None) -> str:
    kwargs = {"user": user} if user else {}
    _code, out = await asyncio.to_thread(container.exec_run, list(argv), **kwargs)
    return out.decode(errors="replace").strip()


async def _probe(container: Any, host: str, port: int) -> str:
    return await _exec(container, "python3", "-c", PROBE, host, str(port))


async def test_tenant_reaches_only_its_database_redis_and_telegram(
    make_settings: Any,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    docker_engine: Any,
    telegram_sandbox: TelegramSandbox,
    loopback_service: int,
    unique_slug: str,
) -> None:
    settings: Settings = make_settings(
        tenant_network=Settings.model_fields["tenant_network"].default
    )
    assert settings.tenant_network == DEFAULT_TENANT_NETWORK  # the default, not "host"
    slug_a, slug_b = unique_slug, unique_slug[:-1] + ("b" if unique_slug[-1] != "b" else "c")
    tenant_a = await make_tenant(slug_a, owner=777501)
    tenant_b = await make_tenant(slug_b, owner=777502)
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=runtime
    ):
        for tenant in (tenant_a, tenant_b):
            await wait_status(wpool, tenant.id, "active", timeout=90, runtime=runtime)
        a = await asyncio.to_thread(
            docker_engine.containers.get, (await runtime.status(slug_a)).instance_id
        )
        b = await asyncio.to_thread(
            docker_engine.containers.get, (await runtime.status(slug_b)).instance_id
        )

        # On the tenants' bridge, never the host's network; inter-container traffic off.
        assert a.attrs["HostConfig"]["NetworkMode"] == DEFAULT_TENANT_NETWORK
        assert set(a.attrs["NetworkSettings"]["Networks"]) == {DEFAULT_TENANT_NETWORK}
        network = await asyncio.to_thread(docker_engine.networks.get, DEFAULT_TENANT_NETWORK)
        assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        b_address = b.attrs["NetworkSettings"]["Networks"][DEFAULT_TENANT_NETWORK]["IPAddress"]

        # The bot works: /start through the emulator on the host's 127.0.0.1 (relayed).
        row = await tenant_row(wpool, tenant_a.id)
        user = await telegram_sandbox.user(bot_id=row.bot_id, first_name="Net")
        answer = await user.ask("/start", timeout=30)
        assert answer.get("text"), answer

        # PostgreSQL and Redis answer A with its own credentials.
        role = f"{settings.tenant_role_prefix}{slug_a}"
        out = await _exec(a, "python3", "-c", CONNECT_PG, f"{SECRETS_DIR}/database_url")
        assert out == role
        out = await _exec(
            a,
            "python3",
            "-c",
            CONNECT_REDIS,
            f"{SECRETS_DIR}/redis_url",
            f"{settings.tenant_role_prefix}:t:{slug_a}:",
        )
        assert out == "ok", out

        # The host's loopback services (the API and its kin): unreachable, by any route.
        assert await _probe(a, "127.0.0.1", loopback_service) != "open"
        assert await _probe(a, gateway, loopback_service) != "open"
        assert await _probe(a, HOST_ALIAS, loopback_service) != "open"
        # The host's own address on the machine's network too.
        host_ip = _primary_address()
        if host_ip:
            assert await _probe(a, host_ip, loopback_service) != "open"

        # Tenant B: a listener inside B (its own user, in its tmpfs) that B itself reaches...
        listener = (
            "import socket,time; s=socket.socket(); s.bind(('0.0.0.0', 8089)); s.listen(); "
            "time.sleep(60)"
        )
        await asyncio.to_thread(b.exec_run, ["python3", "-c", listener], detach=True)
        await asyncio.sleep(1.0)
        assert await _probe(b, "127.0.0.1", 8089) == "open"
        # ... but A does not (enable_icc=false), nor by B's host name.
        assert await _probe(a, b_address, 8089) != "open"
        assert await _probe(a, b.attrs["Config"]["Hostname"], 8089) != "open"

        # No Docker socket, and no Docker API on the gateway.
        out = await _exec(
            a, "python3", "-c", "import os; print(os.path.exists('/var/run/docker.sock'))"
        )
        assert out == "False"
        for port in (2375, 2376):
            assert await _probe(a, gateway, port) != "open"

        # Recorded, not asserted: what pg_hba / Redis's default user allow through the relay.
        superuser = await _exec(
            a, "python3", "-c", CONNECT_PG, f"{SECRETS_DIR}/database_url", "postgres"
        )
        trusts = await wpool.fetchval(
            "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust' AND type = 'host'"
        )
        if not trusts:
            assert superuser.startswith("refused"), superuser

    # Every provisioning job went through at its first attempt (the relay and the network were
    # ready when the bots started).
    failures = await wpool.fetch("SELECT kind, attempts, last_error FROM control.jobs")
    assert all(j["last_error"] is None for j in failures), [dict(j) for j in failures]


def _primary_address() -> str | None:
    """The host's address on its outward network (not loopback), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else str(address)
