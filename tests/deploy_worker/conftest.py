"""Fixtures of the deploy worker tests: a control database of the test's own, settings with short
timeouts, the runtime under test (process always; docker and swarm when an engine answers and the image
is built), tenants with bots registered in the Telegram emulator, and a running worker.

Each test gets a fresh database (the reconciler scans every tenant of its database, so tests sharing
one would converge each other's tenants: a copy of one migrated template), its own role prefix (= runtime namespace) and its own
process state directory; everything is removed afterwards. The process runtimes of one session fork
from one shared fork server (tests/support/shared_fork_server.py): starting one costs seconds of CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.runtimes.base import Runtime
from deploy_worker.service import WorkerParts
from fleet.db import create_pool
from fleet.repositories.tenants import Tenant
from fleet.secrets import SecretBox, generate_master_key
from fleet.settings import Settings, load_settings
from fleet.tenants import TenantService
from sandbox.telegram import TelegramEmulator
from sandbox.testing import new_bot_token, telegram_emulator, telegram_sandbox  # noqa: F401
from schemas.tenants import TenantCreate
from tests.support.databases import ControlTemplate, drop_later
from tests.support.dw_helpers import running_worker
from tests.support.shared_fork_server import SharedForkServer

IMAGE = os.environ.get("BOTFLEET_TEST_IMAGE", "botfleet:latest")  # a tag of your own build
REPO_ROOT = Path(__file__).resolve().parents[2]


# -- engines -------------------------------------------------------------------------------------


def _docker_client() -> Any | None:
    from deploy_worker.runtimes import docker_client

    return docker_client(timeout=10)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker SDK client, or skip: no engine answers, or the botfleet image is not built."""
    client = _docker_client()
    if client is None:
        pytest.skip("no Docker engine answers (start dockerd, see .ci/build-image.sh)")
    import docker.errors

    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        pytest.skip(f"image {IMAGE} is not built (run .ci/build-image.sh)")
    yield client
    client.close()


@pytest.fixture(scope="session")
def swarm_engine(docker_engine: Any) -> Iterator[Any]:
    """The docker client of a swarm manager (``docker swarm init`` when this engine is in none).

    The engine leaves the swarm again when the last test session using it ends, if a test session
    made it (sessions on this machine, xdist workers included, register in a file under a lock)."""
    import docker.errors

    with _swarm_users() as users:
        if docker_engine.info().get("Swarm", {}).get("LocalNodeState") != "active":
            try:
                docker_engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
            except docker.errors.APIError as exc:
                pytest.skip(f"cannot initialise a swarm here: {exc}")
            users["initialised"] = True
        users["pids"].append(os.getpid())
    yield docker_engine
    with _swarm_users() as users:
        users["pids"].remove(os.getpid())
        if not users["pids"] and users["initialised"] and not docker_engine.services.list():
            docker_engine.swarm.leave(force=True)
            users["initialised"] = False


@contextlib.contextmanager
def _swarm_users() -> Iterator[dict[str, Any]]:
    """The sessions using the engine's swarm (live pids) and whether tests initialised it, read and
    written back under an exclusive lock."""
    path = Path(tempfile.gettempdir()) / "botfleet-tests-swarm.json"
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        users: dict[str, Any] = json.loads(text) if text.strip() else {}
        users = {
            "initialised": bool(users.get("initialised")),
            "pids": [pid for pid in users.get("pids", []) if _alive(int(pid))],
        }
        yield users
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(users))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- a control database of the test's own ----------------------------------------------------------


@pytest.fixture
async def control_db(
    database_url: str, role_prefix: str, control_template: ControlTemplate
) -> AsyncIterator[str]:
    """A fresh database with the control schema (a copy of the session's migrated template);
    dropped with the test's roles afterwards, in the background (tests/support/databases.py)."""
    name = "bfw_" + secrets.token_hex(5)
    yield await control_template.copy(name)
    drop_later(database_url, name, role_prefix=role_prefix)


@pytest.fixture
async def wpool(control_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(control_db, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
def secret_box(master_key: str) -> SecretBox:
    return SecretBox(master_key)


@pytest.fixture
async def acl_cleanup(redis: Redis, role_prefix: str) -> AsyncIterator[None]:
    """Remove the test's Redis ACL users and tenant keys, whatever the test left."""
    yield
    for user in await redis.execute_command("ACL", "USERS"):
        user = user.decode() if isinstance(user, bytes) else user
        if user.startswith(role_prefix):
            await redis.execute_command("ACL", "DELUSER", user)
    keys = [k async for k in redis.scan_iter(match=f"{role_prefix}:*", count=1000)]
    if keys:
        await redis.unlink(*keys)


# -- settings and runtimes -------------------------------------------------------------------------


@pytest.fixture(params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def runtime_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return str(request.param)


@pytest.fixture
def make_settings(
    control_db: str,
    redis_url: str,
    role_prefix: str,
    master_key: str,
    tmp_path: Path,
    telegram_emulator: TelegramEmulator,  # noqa: F811
    runtime_kind: str,
    acl_cleanup: None,
) -> Callable[..., Settings]:
    """Settings for this test (short timeouts); keyword arguments override."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": control_db,
            "redis_url": redis_url,
            "master_key": master_key,
            "tenant_role_prefix": role_prefix,
            "telegram_api_base": telegram_emulator.base_url,
            "runtime": runtime_kind,
            "tenant_image": IMAGE,
            "tenant_network": "host",
            "tenant_memory_mb": 384,
            "tenant_cpus": 0.5,
            "process_state_dir": str(tmp_path / "processes"),
            "heartbeat_timeout_s": 30.0,
            "worker_concurrency": 8,
            "worker_lease_s": 10.0,
            "worker_poll_s": 0.5,
            "worker_shutdown_s": 10.0,
            "reconcile_interval_s": 3600.0,  # tests run passes themselves unless they say otherwise
            "stop_timeout_s": 3.0,
            "crash_loop_restarts": 3,
            "crash_loop_window_s": 60.0,
            "log_level": "INFO",
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def shared_fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedForkServer]:
    """One fork server for every process runtime of this session (it costs seconds to start; the
    runtimes of different tests share nothing else): see tests/support/shared_fork_server.py."""
    shared = SharedForkServer(log_path=tmp_path_factory.mktemp("forkserver") / "forkserver.log")
    yield shared
    shared.close()


@pytest.fixture
async def runtime(
    settings: Settings, shared_fork_server: SharedForkServer
) -> AsyncIterator[Runtime]:
    """The runtime under test; every instance of the test's namespace is removed afterwards. The
    process runtime forks from the session's shared fork server."""
    from deploy_worker.runtimes import create_runtime

    rt = await asyncio.to_thread(
        create_runtime,
        settings,
        namespace=settings.tenant_role_prefix,
        fork_server=shared_fork_server.handle if settings.runtime == "process" else None,
    )
    try:
        yield rt
    finally:
        # all at once: each waits for its bot to stop (a test may leave 20)
        instances = await rt.list_by_label()
        await asyncio.gather(*(rt.remove(i.slug) for i in instances), return_exceptions=True)
        await rt.close()


# -- tenants and a running worker -------------------------------------------------------------------


@pytest.fixture
def tenant_service(
    wpool: asyncpg.Pool, redis: Redis, secret_box: SecretBox, role_prefix: str
) -> TenantService:
    return TenantService(pool=wpool, redis=redis, secrets=secret_box, role_prefix=role_prefix)


@pytest.fixture
def make_tenant(
    tenant_service: TenantService,
    telegram_emulator: TelegramEmulator,  # noqa: F811
) -> Callable[..., Awaitable[Tenant]]:
    """Create a tenant (desired running, a provision job queued); its bot is registered in the
    emulator unless ``register=False`` (an unknown token)."""

    async def create(slug: str, *, register: bool = True, owner: int = 424242) -> Tenant:
        token = new_bot_token()
        if register:
            telegram_emulator.register_bot(token, username=f"{slug}_bot")
        data = TenantCreate(
            slug=slug,
            display_name=f"Test {slug}",
            owner_telegram_ids=[owner],
            bot_token=token,
            locale="en",
            timezone="Europe/Moscow",
        )
        return await tenant_service.create(data, actor="test", provision_now=False)

    return create


@pytest.fixture
async def worker(
    settings: Settings, wpool: asyncpg.Pool, redis: Redis, secret_box: SecretBox, runtime: Runtime
) -> AsyncIterator[WorkerParts]:
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=runtime
    ) as parts:
        yield parts
