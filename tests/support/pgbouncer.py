"""A real PgBouncer (the system's binary, transaction mode) in front of the test database.

The ``pgbouncer`` fixture (tests/conftest.py) starts one per test on a free port with its own
configuration and auth file under a temporary folder, and a lookup role of its own; it skips, saying
why, only where the binary is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg

from cli.embedded import EmbeddedPgBouncer, free_port
from fleet.pooler import PoolerConfig, drop_auth_lookup, install_auth_lookup

MISSING = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)"


@dataclass(frozen=True)
class Pooler:
    """A running PgBouncer: where it listens and what it serves."""

    host: str
    port: int
    database: str
    max_server_connections: int
    bouncer: EmbeddedPgBouncer

    def url(self, role: str, password: str) -> str:
        """A tenant's URL through the pooler."""
        return (
            f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{self.database}"
        )

    def stats_url(self) -> str:
        """Its admin console, as its lookup role (its ``stats_users``) reads it."""
        config = self.bouncer.config
        return (
            f"postgresql://{quote(config.auth_user, safe='')}:"
            f"{quote(self.bouncer.auth_password, safe='')}@{self.host}:{self.port}/pgbouncer"
        )

    def log(self) -> str:
        path = Path(self.bouncer.config.logfile)
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def pooler_folder() -> Iterator[Path]:
    """A folder for a PgBouncer's config, password file and log, removed afterwards; readable by all,
    since PgBouncer runs as an unprivileged user when the tests run as root."""
    root = Path(tempfile.mkdtemp(prefix="botfleet-pgbouncer-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def running_pooler(
    database_url: str,
    *,
    max_server_connections: int = 10,
    pool_per_tenant: int = 3,
    reserve_per_tenant: int | None = None,
    server_idle_s: int = 2,
) -> AsyncIterator[Pooler]:
    """PgBouncer in front of ``database_url``'s database (a superuser's URL: it installs the lookup);
    ``reserve_per_tenant`` None keeps the platform's default (``PoolerConfig``)."""
    database = urlsplit(database_url).path.lstrip("/")
    auth_user = "x" + secrets.token_hex(4) + "_pooler"  # .ci/run drops such leftovers
    password = secrets.token_urlsafe(18)
    conn = await asyncpg.connect(database_url)
    try:
        await install_auth_lookup(conn, auth_user=auth_user, password=password)
    finally:
        await conn.close()
    with pooler_folder() as root:
        config = PoolerConfig(
            listen_port=free_port(0),
            server_host=urlsplit(database_url).hostname or "127.0.0.1",
            server_port=urlsplit(database_url).port or 5432,
            database=database,
            auth_user=auth_user,
            auth_file=str(root / "userlist.txt"),
            logfile=str(root / "pgbouncer.log"),
            pidfile=str(root / "pgbouncer.pid"),
            max_server_connections=max_server_connections,
            pool_per_tenant=pool_per_tenant,
            server_idle_s=server_idle_s,
            **({} if reserve_per_tenant is None else {"reserve_per_tenant": reserve_per_tenant}),
        )
        bouncer = EmbeddedPgBouncer(root, config, password)
        try:
            await bouncer.start()
            yield Pooler("127.0.0.1", config.listen_port, database, max_server_connections, bouncer)
        finally:
            await bouncer.stop()
            conn = await asyncpg.connect(database_url)
            try:
                # its server connections are closed with it; a lookup connection may linger a moment
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    auth_user,
                )
                await drop_auth_lookup(conn, auth_user=auth_user)
            finally:
                await conn.close()
