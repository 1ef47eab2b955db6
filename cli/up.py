"""``botfleet up``: the whole platform in one process, on embedded defaults when nothing is configured.

What is not configured is provided locally, so a newcomer sees the product work on one machine:

- no ``BOTFLEET_DATABASE_URL`` / ``BOTFLEET_REDIS_URL``: an embedded PostgreSQL / Redis under ``--data-dir``;
- no ``BOTFLEET_MASTER_KEY``: one generated once and kept in ``--data-dir/master.key`` (mode 0600);
- no ``BOTFLEET_TELEGRAM_API_BASE`` and no sales bot token: the Telegram emulator (with its web page) and a
  sandbox sales bot;
- no YooKassa shop: the YooKassa stand-in, notifying our webhook from 127.0.0.77.

Stand-ins take fake payments, so they run only when nothing real is configured (no Telegram API base,
no sales bot token, no YooKassa credentials) or with an explicit ``--sandbox``
(``BOTFLEET_SANDBOX=true``); a mix of real and stand-in (a real sales bot selling against the fake
YooKassa) is refused before anything starts, with exit code 2 and what to configure. A sandbox says
so in its banner and in ``/readyz`` (``"sandbox": true``).

Then: migrations, the control plane API, the deploy worker (on embedded defaults the ``process``
runtime unless ``BOTFLEET_RUNTIME`` says otherwise; on configured services ``auto`` is docker, refused
when no engine answers), the
subscription lifecycle and the sales bot, until Ctrl-C or SIGTERM stops everything in reverse order.
Their background loops run supervised (restarted with backoff when they crash), and the API's
``/readyz`` and ``/metrics`` cover every one of them: it is the one health endpoint of the process.
Configured services are used as they are: with real URLs, tokens and YooKassa credentials, the same
command runs the platform against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer

from cli.api import fake_money_problem
from cli.billing import STOP_GRACE_S as LIFECYCLE_STOP_GRACE_S
from cli.billing import supervise_lifecycle
from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from cli.embedded import EmbeddedPostgres, EmbeddedRedis, remembered_port, start_pooler
from fleet.settings import Settings
from kit.supervisor import Supervisor

log = logging.getLogger(__name__)

SANDBOX_NOTIFY_FROM = "127.0.0.77"
SALES_BOT_USERNAME = "botfleet_sales_bot"
DEMO_BOTS = 3


SANDBOX_BANNER = (
    "!! SANDBOX: {what}. Not for production.\n"
    "!! To go live, configure real Telegram and YooKassa (README, 'Going live')."
)


@dataclass(frozen=True)
class StandIns:
    """Which stand-ins ``up`` runs, and whether the installation is a sandbox."""

    telegram: bool
    yookassa: bool
    sandbox: bool

    def describe(self) -> str:
        """What is fake, for the banner."""
        parts = [
            name for name, on in (("Telegram", self.telegram), ("YooKassa", self.yookassa)) if on
        ]
        if not parts:
            return "declared with --sandbox (BOTFLEET_SANDBOX)"
        fake = " and ".join(parts) + (" are stand-ins" if len(parts) > 1 else " is a stand-in")
        return fake + ("; payments are FAKE" if self.yookassa else "")


def plan_stand_ins(config: Settings, *, sandbox: bool) -> StandIns:
    """Decide the stand-ins before anything starts; ConfigError saying what to configure when real
    and stand-in would be mixed (fake payments taken for a real sales bot, or the reverse) or when
    YooKassa is configured on a stand-in's address, unless this is declared a sandbox."""
    from fleet.errors import ConfigError

    sandbox = sandbox or config.sandbox
    telegram = config.telegram_api_base is None and config.sales_bot_token is None
    yookassa = config.yookassa_shop_id is None and config.yookassa_secret_key is None
    if (config.yookassa_shop_id is None) != (config.yookassa_secret_key is None):
        missing = "SECRET_KEY" if config.yookassa_secret_key is None else "SHOP_ID"
        raise ConfigError(
            f"BOTFLEET_YOOKASSA_{missing} is not set: YooKassa needs both the shop id and the "
            "secret key (from the YooKassa dashboard)"
        )
    if not sandbox:
        if yookassa and not telegram:
            configured = (
                "BOTFLEET_SALES_BOT_TOKEN"
                if config.sales_bot_token is not None
                else "BOTFLEET_TELEGRAM_API_BASE"
            )
            raise ConfigError(
                f"{configured} is set but YooKassa is not: set BOTFLEET_YOOKASSA_SHOP_ID and "
                "BOTFLEET_YOOKASSA_SECRET_KEY to take real payments, or run `botfleet up "
                "--sandbox` to take fake ones from the YooKassa stand-in"
            )
        if telegram and not yookassa:
            raise ConfigError(
                "YooKassa is configured but Telegram is not: set BOTFLEET_SALES_BOT_TOKEN (the "
                "sales bot's token from @BotFather), or run `botfleet up --sandbox` to use the "
                "Telegram emulator"
            )
        problem = fake_money_problem(config)
        if problem is not None:
            raise ConfigError(problem)
    return StandIns(telegram=telegram, yookassa=yookassa, sandbox=sandbox or telegram or yookassa)


@dataclass
class Stack:
    """What ``up`` started: URLs to print and long-running tasks to stop."""

    lines: list[str] = field(default_factory=list)
    emulator: Any = (
        None  # the in-process Telegram emulator, when the sandbox stands in for Telegram
    )


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """A value kept in a private file under the data folder, created on first use."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _sandbox_token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:AA{secrets.token_urlsafe(33)[:33]}"


async def _embedded(config: Settings, data: Path, exits: AsyncExitStack, stack: Stack) -> Settings:
    """Start embedded PostgreSQL/Redis for what is not configured; return the completed settings."""
    updates: dict[str, Any] = {}
    if config.database_url is None:
        pg = EmbeddedPostgres(data / "postgres")
        await pg.start()
        exits.push_async_callback(pg.stop)
        await _ensure_database(pg.url, "botfleet")
        updates["database_url"] = _with_database(pg.url, "botfleet")
        stack.lines.append(f"PostgreSQL (embedded):  {updates['database_url']}")
    if config.redis_url is None:
        redis = EmbeddedRedis(data / "redis")
        await redis.start()
        exits.push_async_callback(redis.stop)
        updates["redis_url"] = redis.url
        stack.lines.append(f"Redis (embedded):       {redis.url}")
    if config.master_key is None:
        from fleet.secrets import generate_master_key

        updates["master_key"] = _read_or_create(data / "master.key", generate_master_key)
    updates.setdefault("process_state_dir", str(data / "processes"))
    return config.model_copy(update=updates)


async def _ensure_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _sandbox(
    config: Settings,
    data: Path,
    *,
    plan: StandIns,
    host: str,
    api_port: int,
    exits: AsyncExitStack,
    stack: Stack,
) -> Settings:
    """The Telegram emulator and the YooKassa stand-in, as ``plan`` (:func:`plan_stand_ins`) says."""
    updates: dict[str, Any] = {"sandbox": plan.sandbox}
    if plan.telegram:
        from sandbox.telegram import TelegramEmulator
        from sandbox.telegram.demo import not_sold_reply

        tg = await exits.enter_async_context(
            TelegramEmulator.start(
                host=host,
                port=remembered_port(data / "telegram.port", 8081, host=host),
                data_dir=data / "telegram",
            )
        )
        token = _read_or_create(data / "sales_bot.token", _sandbox_token)
        tg.register_bot(token, username=SALES_BOT_USERNAME, first_name="botfleet")
        updates.update(telegram_api_base=tg.base_url, sales_bot_token=token)
        stack.lines.append(f"Telegram emulator:      {tg.base_url}")
        stack.lines.append(f"Sandbox web page:       {tg.web_url}   <- chat with the bots here")
        stack.lines.append(f"Sales bot:              @{SALES_BOT_USERNAME}")
        stack.emulator = tg
        demo = [
            _read_or_create(data / f"demo_bot_{i}.token", _sandbox_token)
            for i in range(1, DEMO_BOTS + 1)
        ]
        for i, demo_token in enumerate(demo, start=1):
            tg.register_bot(
                demo_token,
                username=f"demo_booking_{i}_bot",
                first_name=f"Demo {i}",
                idle_reply=not_sold_reply(SALES_BOT_USERNAME),
            )
        stack.lines.append("Bot tokens to sell (made 'with @BotFather' for you):")
        stack.lines.extend(f"  {t}" for t in demo)
    if plan.yookassa:
        from sandbox.yookassa import YooKassaStandIn

        webhook = f"http://{host}:{api_port}/webhooks/yookassa"
        yk = await exits.enter_async_context(
            YooKassaStandIn.start(
                host=host,
                port=remembered_port(data / "yookassa.port", 8082, host=host),
                webhook_url=webhook,
                notify_from=SANDBOX_NOTIFY_FROM,
                # With receipts on, the stand-in is the shop production is: it refuses payments
                # without a valid 54-FZ receipt.
                require_receipts=config.yookassa_receipts,
                require_tax_system=config.yookassa_tax_system_code is not None,
            )
        )
        updates.update(
            yookassa_shop_id=yk.shop_id,
            yookassa_secret_key=yk.secret_key,
            yookassa_api_url=yk.api_url,
            yookassa_allowed_networks=[
                *config.yookassa_allowed_networks,
                f"{SANDBOX_NOTIFY_FROM}/32",
            ],
        )
        stack.lines.append(f"YooKassa stand-in:      {yk.api_url}  (notifies {webhook})")
    if config.yookassa_return_url is None:
        web = stack.emulator
        updates["yookassa_return_url"] = web.web_url if web else f"http://{host}:{api_port}/docs"
    return config.model_copy(update=updates)


async def _register_tenant_bots(pool: Any, box: Any, emulator: Any) -> int:
    """Register every live tenant's bot (a no-op for those the emulator kept in its data dir)."""
    from fleet.repositories.tenants import TenantRepository

    rows = await TenantRepository(pool).live()
    for row in rows:
        token = box.decrypt(row.bot_token_enc)
        username = row.bot_username or f"{row.slug}_bot"
        with contextlib.suppress(Exception):
            emulator.register_bot(token, username=username)
    return len(rows)


async def _first_admin_key(pool: Any, data: Path) -> str:
    """The admin key printed at start: created once, then read from ``data/admin.key``."""
    path = data / "admin.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    from fleet.apikeys import ApiKeyService

    created = await ApiKeyService(pool=pool).create(
        scopes=["admin"], name="botfleet up", actor="up"
    )
    return _read_or_create(path, lambda: created.key)


async def _demo_plans(pool: Any) -> None:
    """A sandbox with no plans has nothing to sell: add two demo plans (only when there are none)."""
    from fleet.plans import PlanService
    from schemas.plans import PlanCreate

    service = PlanService(pool=pool)
    if await service.list():
        return
    for code, name, russian, price, days in (
        ("month", "Month", "Месяц", "990.00", 30),
        ("year", "Year", "Год", "9900.00", 365),
    ):
        plan = PlanCreate.model_validate(
            {
                "code": code,
                "name": name,
                "price": price,
                "period_days": days,
                "translations": {"ru": {"name": russian}, "en": {"name": name}},
            }
        )
        await service.create(plan, actor="up")


async def _serve_api(
    config: Settings, *, host: str, port: int, log_source: Any, supervisors: list[Supervisor]
) -> Any:
    import uvicorn

    from control_plane.app import create_app
    from control_plane.middleware import install_edge

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # `up` owns the signals: uvicorn must not install its own handlers.
            yield

    app = install_edge(create_app(config, log_source=log_source, supervisors=supervisors), config)
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            # forwarded headers: only the app's EdgeGuard reads them, from trusted proxies
            proxy_headers=False,
        )
    )
    return server


async def _wait_ready(url: str, timeout: float = 60.0) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=2.0) as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not become ready in {timeout:.0f} s")
            await asyncio.sleep(0.2)


async def up_main(
    config: Settings,
    *,
    host: str,
    port: int,
    data: Path,
    stop: asyncio.Event,
    plan: StandIns | None = None,
) -> None:
    """Start everything, print where it is, wait for ``stop``, stop everything."""
    from control_plane.app import create_app  # noqa: F401  (fail early if the API cannot load)
    from deploy_worker.service import open_worker
    from fleet.billing.wiring import open_billing
    from fleet.data_plane import install_platform
    from fleet.migrations import migrate_control, migrate_tenants
    from sales_bot.app import run as run_sales_bot

    plan = plan or plan_stand_ins(config, sandbox=False)
    stack = Stack()
    async with AsyncExitStack() as exits:
        config = await _embedded(config, data, exits, stack)
        config, pooler = await start_pooler(config, data, exits)
        stack.lines.append(f"Tenant bots' database: {pooler}")
        log.info("tenant bots' database", extra={"pooler": pooler})
        config = await _sandbox(
            config, data, plan=plan, host=host, api_port=port, exits=exits, stack=stack
        )
        res = await exits.enter_async_context(
            open_resources(
                config,
                pool_size=config.db_pool_size + config.worker_concurrency,
                provisioner=True,
            )
        )
        assert res.secrets is not None  # open_resources opens it unless told not to
        async with res.ddl_pool.acquire() as conn:
            await install_platform(conn)
        await migrate_control(res.pool)
        report = await migrate_tenants(
            res.ddl_pool, prefix=config.tenant_role_prefix, concurrency=config.migrate_concurrency
        )
        for schema, error in report.failed.items():
            log.error("tenant schema failed to migrate", extra={"schema": schema, "error": error})
        if stack.emulator is not None:
            await _register_tenant_bots(res.pool, res.secrets, stack.emulator)
            await _demo_plans(res.pool)
        admin_key = await _first_admin_key(res.pool, data)

        # One supervisor per component, all watched by the API's /readyz and /metrics.
        lifecycle_loops, sales_loops = Supervisor("lifecycle"), Supervisor("sales-bot")
        parts = await exits.enter_async_context(
            open_worker(
                config,
                pool=res.pool,
                redis=res.redis,
                secrets=res.secrets,
                supervisor=Supervisor("worker"),
                provisioner=res.provisioner,
            )
        )
        server = await _serve_api(
            config,
            host=host,
            port=port,
            log_source=parts.runtime,
            supervisors=[parts.worker.supervisor, lifecycle_loops, sales_loops],
        )
        tasks = {
            "api": asyncio.create_task(server.serve(), name="api"),
            "worker": asyncio.create_task(parts.worker.run(), name="worker"),
        }
        await _wait_ready(f"http://{host}:{port}/readyz")
        billing = await exits.enter_async_context(
            open_billing(settings=config, pool=res.pool, secrets=res.secrets)
        )
        supervise_lifecycle(
            lifecycle_loops,
            billing.lifecycle,
            interval=config.billing_lifecycle_interval_s,
            stop=stop,
        )
        lifecycle_loops.start()
        exits.push_async_callback(partial(lifecycle_loops.stop, grace=LIFECYCLE_STOP_GRACE_S))
        if config.sales_bot_token is not None:
            tasks["sales_bot"] = asyncio.create_task(
                run_sales_bot(
                    config,
                    pool=res.pool,
                    redis=res.redis,
                    box=res.secrets,
                    stop=stop,
                    supervisor=sales_loops,
                ),
                name="sales_bot",
            )
        stack.lines[:0] = [
            f"Control plane API:      http://{host}:{port}   (docs: http://{host}:{port}/docs)",
            f"Admin API key:          {admin_key}",
            f"Deploy worker:          runtime {parts.runtime.kind}"
            + (f" ({PROCESS_NOTE})" if parts.runtime.kind == "process" else ""),
        ]
        if plan.sandbox:
            warning = SANDBOX_BANNER.format(what=plan.describe())
            stack.lines[:0] = [warning, ""]
            log.warning("sandbox installation: payments are fake; not for production")
        typer.echo("\nbotfleet is up.\n" + "\n".join(stack.lines) + "\n\nPress Ctrl-C to stop.")

        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(
            {*tasks.values(), stopper}, return_when=asyncio.FIRST_COMPLETED
        )
        crashed = [t for t in done if t is not stopper and t.exception() is not None]
        for task in crashed:
            log.error(
                "component stopped", extra={"component": task.get_name()}, exc_info=task.exception()
            )
        typer.echo("\nstopping...", err=True)
        stop.set()
        parts.worker.stop()
        server.should_exit = True
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        stopper.cancel()
        shutdown_all = getattr(parts.runtime, "shutdown_all", None)
        if shutdown_all is not None:  # local bots stop with `up`; containers keep running
            await shutdown_all()
    if crashed:
        raise RuntimeError(f"{crashed[0].get_name()} stopped unexpectedly; see the log above")


PROCESS_NOTE = "bots share this host's network; uids and limits as the log says"


def _choose_runtime(config: Settings, plan: StandIns) -> Settings:
    """``auto`` is the process runtime on embedded defaults (the sandbox); otherwise it is resolved
    as the worker does (docker, or a ConfigError when no engine answers: no silent fall back)."""
    from deploy_worker.runtimes import process_confinement, resolve_kind

    embedded = plan.sandbox or config.database_url is None or config.redis_url is None
    kind = resolve_kind(config, sandbox=embedded)
    config = config.model_copy(update={"runtime": kind, "sandbox": plan.sandbox})
    if kind == "process":
        # Required outside a sandbox: refused here, before anything starts, when the host cannot.
        process_confinement(config, namespace=config.tenant_role_prefix).probe()
    return config


def up(
    port: int = typer.Option(8000, help="Port of the control plane API."),
    host: str = typer.Option("127.0.0.1", help="Address every server listens on."),
    data_dir: Path = typer.Option(
        Path(".botfleet"), help="Where embedded PostgreSQL/Redis, keys and bot state are kept."
    ),
    sandbox: bool = typer.Option(
        False,
        "--sandbox",
        help="Allow stand-ins next to real services (e.g. a real sales bot with the fake "
        "YooKassa); without it they run only when nothing real is configured.",
    ),
) -> None:
    """Run the whole platform: embedded PostgreSQL and Redis, the sandbox Telegram and YooKassa,
    the API, the deploy worker and the sales bot, for whatever is not configured."""
    from fleet.errors import ConfigError

    config = settings(service=True)
    try:
        plan = plan_stand_ins(config, sandbox=sandbox)
        config = _choose_runtime(config, plan)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    data = data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await up_main(config, host=host, port=port, data=data, stop=stop, plan=plan)

    run(go)
    typer.echo("botfleet stopped.", err=True)
