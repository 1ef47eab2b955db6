"""The swarm runtime's tenant services behind a real PgBouncer (issue 17): the worker hands every
service the pooler's address (``BOTFLEET_TENANT_DATABASE_HOST``/``_PORT``) and the pooled flag, so
three services on one swarm node answer and book while PostgreSQL sees only the pooler's server
connections, at most its bound of two."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedPgBouncer
from deploy_worker.errors import RuntimeBackendError
from deploy_worker.runtimes.docker import LoopbackRelay
from deploy_worker.runtimes.swarm import SwarmRuntime
from deploy_worker.spec import LABEL_NAMESPACE, RuntimeSpec
from fleet.pooler import PoolerConfig, auth_file_line, drop_auth_lookup, install_auth_lookup
from fleet.pooler_stats import read_pooler_figures
from fleet.secrets import SecretBox
from fleet.settings import Settings
from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from tenant_bot.booking import BookingCore
from tests.support.booking_helpers import seed_barber
from tests.support.dw_helpers import running_worker, tenant_row, wait_status
from tests.support.pgbouncer import MISSING, Pooler, running_pooler

pytestmark = pytest.mark.docker

BOUND = 2  # the pooler's max_db_connections: fewer than the three tenants
TENANTS = 3
# PostgreSQL may list a backend PgBouncer just closed (to lend the bound to another tenant's pool)
# for a moment beside its replacement, while its process exits (docs/SCALING.md).
EXITING_BACKENDS = 2
ZONE = ZoneInfo("Europe/Moscow")
BASE_IMAGE = os.environ.get("BOTFLEET_BASE_IMAGE", "botfleet-base:bookworm")
SERVICE = "Haircut · "  # the button reads "Haircut · 1 h · 1 500 ₽"
SUMMARY_MARK = "check your booking"


@pytest.fixture
def runtime_kind() -> str:
    return "swarm"


@pytest.fixture
async def swarm(swarm_engine: Any, role_prefix: str) -> AsyncIterator[SwarmRuntime]:
    runtime = SwarmRuntime(client=swarm_engine, namespace=role_prefix, restart_delay_s=0.5)
    yield runtime
    for instance in await runtime.list_by_label():
        await runtime.remove(instance.slug)


@pytest.fixture
async def tenant_pooler(control_db: str) -> AsyncIterator[Pooler]:
    """PgBouncer in front of this test's control database (where its tenants' schemas live),
    bounded at two server connections, one per tenant at once; idle ones kept for a minute, so the
    connections PostgreSQL lists can be matched with the pooler's own list afterwards."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    async with running_pooler(
        control_db, max_server_connections=BOUND, pool_per_tenant=1, server_idle_s=60
    ) as pooler:
        yield pooler


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tenant_pooler: Pooler) -> Settings:
    """The swarm worker's settings: tenant services reach PostgreSQL only through the pooler (on
    the host network here: the services see the host's loopback, where the pooler listens)."""
    return make_settings(
        runtime="swarm",
        heartbeat_timeout_s=120.0,
        tenant_database_host=tenant_pooler.host,
        tenant_database_port=tenant_pooler.port,
        tenant_database_pooler=True,
        pooler_stats_url=tenant_pooler.stats_url(),
    )


@pytest.mark.slow  # three swarm services: ~1-2 min on 2 cores
async def test_swarm_services_book_through_the_pooler_within_its_bound(
    swarm: SwarmRuntime,
    swarm_engine: Any,
    settings: Settings,
    tenant_pooler: Pooler,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    telegram_sandbox: TelegramSandbox,
    control_db: str,
    role_prefix: str,
    unique_slug: str,
) -> None:
    slugs = [f"{unique_slug}{n}" for n in range(TENANTS)]
    tenants = [await make_tenant(slug, owner=777500 + n) for n, slug in enumerate(slugs)]
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=swarm
    ) as parts:
        rows = [
            await wait_status(wpool, t.id, "active", timeout=240, runtime=swarm) for t in tenants
        ]
        customers: list[TelegramUser] = []
        for row in rows:
            contract = parts.specs.runtime_contract(
                row, parts.tenants.secrets_of(row), parts.tenants.names(row.slug)
            )
            url = contract.database_url.get_secret_value()
            # the service's DATABASE_URL (a Docker secret) is the pooler's, and the bot is told so
            assert f"@{tenant_pooler.host}:{tenant_pooler.port}/" in url
            status = await swarm.status(row.slug)
            service = await asyncio.to_thread(swarm_engine.services.get, status.instance_id)
            spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            env = dict(item.split("=", 1) for item in spec["Env"])
            assert env["BOTFLEET_TENANT_DB_TRANSACTION_POOLER"] == "True"
            customer = await telegram_sandbox.user(bot_id=row.bot_id, first_name="Sw")
            await _seed(url, customer.id)
            customers.append(customer)

        watcher = await asyncpg.connect(control_db)
        peak = held = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak, held
            while sampling:
                peak = max(peak, await _tenant_backends(watcher, role_prefix))
                figures = await read_pooler_figures(tenant_pooler.stats_url())
                held = max(held, figures.server_connections)
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            answers = await asyncio.gather(*(c.ask("/start", timeout=60) for c in customers))
            assert all(a.get("text") for a in answers), answers
            finals = await asyncio.gather(*(_book(c) for c in customers))
        finally:
            sampling = False
            await sampler
        try:
            # booked: the confirmation, then its calendar file
            assert all(
                f.get("document") or "You are booked" in (f["text"] or "") for f in finals
            ), finals
            for row in rows:
                count = await watcher.fetchval(
                    f'SELECT count(*) FROM "{role_prefix}{row.slug}".bookings'
                )
                assert count == 1, (row.slug, count)
            # Every backend of a tenant role is one of the pooler's server connections (matched by
            # its port on PostgreSQL's side): no service reached PostgreSQL directly.
            backends = await watcher.fetch(
                "SELECT usename, client_port FROM pg_stat_activity"
                " WHERE starts_with(usename, $1) AND usename NOT LIKE '%\\_pooler'",
                role_prefix,
            )
        finally:
            await watcher.close()
        servers = await asyncio.to_thread(_pooler_server_ports, tenant_pooler)
        assert backends, "no tenant backend left to match"
        assert {b["client_port"] for b in backends} <= servers, (backends, servers)
        figures = await read_pooler_figures(tenant_pooler.stats_url())
        assert figures.server_connections_max == BOUND
        print(f"tenant backends: peak {peak} (bound {BOUND}); the pooler held at most {held}")
        assert 0 < held <= BOUND, held
        assert 0 < peak <= BOUND + EXITING_BACKENDS, peak
        row = await tenant_row(wpool, tenants[0].id)
        assert row.status == "active"


async def _seed(url: str, customer: int) -> None:
    """One service, one staff member 10:00-18:00 every day and the customer registered, through the
    pooler as the tenant."""
    pool = await asyncpg.create_pool(url, statement_cache_size=0, min_size=0, max_size=1)
    try:
        await seed_barber(
            BookingCore(pool), business="Swarm barber", customer_id=customer, customer_name="Anna"
        )
    finally:
        await pool.close()


def _labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for line in message["inline_keyboard"] or [] for b in line]


async def _book(user: TelegramUser) -> dict[str, Any]:
    """/book, the service, tomorrow, 10:00 (a registered customer: the summary next), Confirm."""
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)

    async def step(wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return await user.wait_for_bot_message(wanted, timeout=30)

    await user.send("/book")
    menu = await step(lambda m: any(x.startswith(SERVICE) for x in _labels(m)))
    await user.click(next(x for x in _labels(menu) if x.startswith(SERVICE)))
    await step(lambda m: "▶" in _labels(m))
    if tomorrow.month != today.month:
        await user.click("▶")
        await step(lambda m: "1" in _labels(m))
    await user.click(str(tomorrow.day))
    await step(lambda m: "10:00" in _labels(m))
    await user.click("10:00")
    await step(lambda m: SUMMARY_MARK in (m["text"] or ""))
    await user.click("✅ Confirm")
    return await step(lambda m: SUMMARY_MARK not in (m["text"] or ""))


async def _tenant_backends(conn: asyncpg.Connection, prefix: str) -> int:
    """PostgreSQL's backends logged in as this test's tenant roles."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename, $1)"
            " AND usename NOT LIKE '%\\_pooler'",
            prefix,
        )
    )


def _pooler_server_ports(pooler: Pooler) -> set[int]:
    """The local ports of the pooler's server connections (its console's ``SHOW SERVERS``)."""
    command = ["psql", "-X", "-A", "-F", "|", "-P", "footer=off", "-h", pooler.host]
    command += ["-p", str(pooler.port), "-U", pooler.bouncer.config.auth_user, "-d", "pgbouncer"]
    done = subprocess.run(
        [*command, "-c", "SHOW SERVERS"],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "PGPASSWORD": pooler.bouncer.auth_password},
        check=True,
    )
    header, *rows = done.stdout.splitlines()
    column = header.split("|").index("local_port")
    return {int(line.split("|")[column]) for line in rows if line.strip()}


# -- the production shape: PgBouncer as a swarm service on the tenants' overlay ----------------------


@pytest.fixture(scope="session")
def pgbouncer_image(swarm_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PgBouncer image of this session's own, from the local base image only: the host's Debian
    pgbouncer binary and the libraries it links that the base lacks (both bookworm). Production
    uses ops/pgbouncer/Dockerfile (Debian's package on the postgres image), not at hand offline."""
    binary = EmbeddedPgBouncer.binary()
    if binary is None:
        pytest.skip(MISSING)
    root = tmp_path_factory.mktemp("pgbouncer-image")
    (root / "lib").mkdir()
    shutil.copy(binary, root / "pgbouncer")
    listed = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in listed.splitlines():
        path = line.split("=>", 1)[1].split("(")[0].strip() if "=>" in line else ""
        if path and not Path(path).name.startswith(("libc.so", "ld-linux")):
            shutil.copy(path, root / "lib" / Path(path).name)
    (root / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "COPY lib/ /usr/local/lib/botfleet-pgbouncer/\n"
        "COPY pgbouncer /usr/local/bin/pgbouncer\n"
        "ENV LD_LIBRARY_PATH=/usr/local/lib/botfleet-pgbouncer\n"
        "USER 65534:65534\n"
        'ENTRYPOINT ["/usr/local/bin/pgbouncer"]\n'
    )
    tag = f"botfleet-pgbouncer-test:{secrets.token_hex(4)}"
    swarm_engine.images.build(path=str(root), tag=tag, rm=True)
    yield tag
    swarm_engine.images.remove(tag, force=True)


@dataclass
class OverlayPooler:
    """PgBouncer as a swarm service on an overlay network, reached by its service name."""

    network: str
    service: str
    gateway: str  # the node's docker_gwbridge address, where loopback-only servers are relayed
    port: int = 6432


@pytest.fixture
async def overlay_pooler(
    swarm_engine: Any,
    pgbouncer_image: str,
    control_db: str,
    redis_url: str,
    role_prefix: str,
    telegram_emulator: TelegramEmulator,
    tmp_path: Path,
) -> AsyncIterator[OverlayPooler]:
    """The tenants' overlay network (made here, as an operator's stack would) with a PgBouncer
    service on it bounded at two server connections. PostgreSQL, Redis and the emulator listen on
    this host's loopback only: they are relayed on the swarm's gateway address, as a host-run server
    would listen on an address the nodes reach."""
    network_name, service_name = f"{role_prefix}tenants", f"{role_prefix}pgbouncer"
    network = await asyncio.to_thread(
        swarm_engine.networks.create, network_name, driver="overlay", attachable=True
    )
    gwbridge = await asyncio.to_thread(swarm_engine.networks.get, "docker_gwbridge")
    gateway = str(gwbridge.attrs["IPAM"]["Config"][0]["Gateway"])
    relay = LoopbackRelay()
    database = urlsplit(control_db)
    redis_port = urlsplit(redis_url).port or 6379
    emulator_port = urlsplit(telegram_emulator.base_url).port or 80
    await relay.serve(
        gateway,
        {
            ("127.0.0.1", database.port or 5432),
            ("127.0.0.1", redis_port),
            ("127.0.0.1", emulator_port),
        },
    )
    auth_user, password = "x" + secrets.token_hex(4) + "_pooler", secrets.token_urlsafe(18)
    admin = await asyncpg.connect(control_db)
    try:
        await install_auth_lookup(admin, auth_user=auth_user, password=password)
    finally:
        await admin.close()
    config = PoolerConfig(
        listen_host="0.0.0.0",  # noqa: S104 (inside its container, on the overlay)
        listen_port=6432,
        server_host=gateway,
        server_port=database.port or 5432,
        database=database.path.lstrip("/"),
        auth_user=auth_user,
        auth_file="/etc/botfleet-pgbouncer/userlist.txt",
        max_server_connections=BOUND,
        pool_per_tenant=1,
        server_idle_s=60,
    )
    etc = tmp_path / "pgbouncer-etc"
    etc.mkdir()
    (etc / "pgbouncer.ini").write_text(config.ini())
    (etc / "userlist.txt").write_text(auth_file_line(auth_user, password))
    for path in (etc, etc / "pgbouncer.ini", etc / "userlist.txt", tmp_path):
        path.chmod(0o755 if path.is_dir() else 0o644)
    import docker.errors
    from docker.types import EndpointSpec, Mount

    service = await asyncio.to_thread(
        swarm_engine.services.create,
        pgbouncer_image,
        args=["/etc/botfleet-pgbouncer/pgbouncer.ini"],
        name=service_name,
        networks=[network_name],
        # DNS round robin, not a virtual IP: this host's kernel has no IPVS, and a pooler's
        # clients hold long connections anyway (docs/SCALING.md)
        endpoint_spec=EndpointSpec(mode="dnsrr"),
        mounts=[Mount("/etc/botfleet-pgbouncer", str(etc), type="bind", read_only=True)],
        labels={LABEL_NAMESPACE: role_prefix},
    )
    try:
        yield OverlayPooler(network=network_name, service=service_name, gateway=gateway)
    finally:
        logs = b"".join(
            await asyncio.to_thread(service.logs, stdout=True, stderr=True, tail=30)
        ).decode(errors="replace")
        await asyncio.to_thread(service.remove)
        for _ in range(60):  # the overlay goes once its last task has stopped
            try:
                await asyncio.to_thread(network.remove)
                break
            except docker.errors.APIError:  # still in use by a stopping task
                await asyncio.sleep(0.5)
        await relay.close()
        admin = await asyncpg.connect(control_db)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                auth_user,
            )
            await drop_auth_lookup(admin, auth_user=auth_user)
        finally:
            await admin.close()
        print(f"pgbouncer service log:\n{logs}")


@pytest.mark.slow  # three swarm services and a pooler service: ~2 min on 2 cores
async def test_swarm_services_reach_a_pooler_service_by_name_on_the_overlay(
    swarm: SwarmRuntime,
    make_settings: Callable[..., Settings],
    overlay_pooler: OverlayPooler,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    telegram_sandbox: TelegramSandbox,
    telegram_emulator: TelegramEmulator,
    control_db: str,
    role_prefix: str,
    unique_slug: str,
) -> None:
    gateway = overlay_pooler.gateway
    emulator_port = urlsplit(telegram_emulator.base_url).port
    settings = make_settings(
        runtime="swarm",
        heartbeat_timeout_s=120.0,
        tenant_network=overlay_pooler.network,
        tenant_database_host=overlay_pooler.service,
        tenant_database_port=overlay_pooler.port,
        tenant_database_pooler=True,
        tenant_redis_host=gateway,
        tenant_telegram_api_base=f"http://{gateway}:{emulator_port}",
    )
    slugs = [f"{unique_slug}{n}" for n in range(TENANTS)]
    tenants = [await make_tenant(slug, owner=777600 + n) for n, slug in enumerate(slugs)]
    watcher = await asyncpg.connect(control_db)
    peak = 0
    sampling = True
    sampler: asyncio.Task[None] | None = None

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, await _tenant_backends(watcher, role_prefix))
            await asyncio.sleep(0.05)

    try:
        async with running_worker(
            settings, pool=wpool, redis=redis, secrets=secret_box, runtime=swarm
        ) as parts:
            rows = [
                await wait_status(wpool, t.id, "active", timeout=240, runtime=swarm)
                for t in tenants
            ]
            customers: list[TelegramUser] = []
            for row in rows:
                contract = parts.specs.runtime_contract(
                    row, parts.tenants.secrets_of(row), parts.tenants.names(row.slug)
                )
                url = urlsplit(contract.database_url.get_secret_value())
                assert (url.hostname, url.port) == (overlay_pooler.service, overlay_pooler.port)
                customer = await telegram_sandbox.user(bot_id=row.bot_id, first_name="Ov")
                # seeded directly (the test is not on the overlay), as the tenant's role
                direct = url._replace(
                    netloc=f"{url.netloc.rsplit('@', 1)[0]}@{_netloc(control_db)}"
                )
                await _seed(urlunsplit(direct), customer.id)
                customers.append(customer)
            # from here on every tenant backend is one the pooler opened
            sampler = asyncio.create_task(sample())
            answers = await asyncio.gather(*(c.ask("/start", timeout=60) for c in customers))
            assert all(a.get("text") for a in answers), answers
            finals = await asyncio.gather(*(_book(c) for c in customers))
    finally:
        sampling = False
        if sampler is not None:
            await sampler
    try:
        assert all(f.get("document") or "You are booked" in (f["text"] or "") for f in finals), (
            finals
        )
        for row in rows:
            count = await watcher.fetchval(
                f'SELECT count(*) FROM "{role_prefix}{row.slug}".bookings'
            )
            assert count == 1, (row.slug, count)
    finally:
        await watcher.close()
    print(f"tenant backends through the overlay pooler: peak {peak} (bound {BOUND})")
    assert 0 < peak <= BOUND + EXITING_BACKENDS, peak


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


async def test_a_loopback_address_on_an_overlay_is_refused_with_what_to_set(
    docker_engine: Any, role_prefix: str, unique_slug: str
) -> None:
    """The docker runtime relays a host's loopback servers to its bridge; nothing can on a swarm's
    overlay: the runtime says which setting to change before it creates anything."""
    runtime = SwarmRuntime(client=docker_engine, namespace=role_prefix)
    spec = RuntimeSpec(
        slug=unique_slug,
        namespace=role_prefix,
        image="botfleet:latest",
        command=("botfleet", "tenant-bot"),
        entrypoint="",
        env={
            "BOTFLEET_TENANT_DATABASE_URL": "postgresql://t:pw@127.0.0.1:6432/botfleet",
            "BOTFLEET_TENANT_REDIS_URL": "redis://t:pw@redis:6379/0",
        },
        network=f"{role_prefix}tenants",
    )
    with pytest.raises(
        RuntimeBackendError,
        match=r"cannot reach a loopback address \(127\.0\.0\.1:6432\); set "
        r"BOTFLEET_TENANT_DATABASE_HOST \(the pooler's service name\) to an address every node",
    ):
        await runtime.ensure(spec)
    assert not await asyncio.to_thread(docker_engine.networks.list, names=[spec.network])
