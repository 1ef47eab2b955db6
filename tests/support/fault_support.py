"""What the fault suite needs: a private PostgreSQL cluster and a private Redis server that a test may
stop and start again at will, on spare ports of 127.0.0.1 (never the machine's shared servers), and
small helpers to watch the platform while they are away.

PostgreSQL 15 runs from the distribution's binaries as the ``postgres`` OS user (PostgreSQL refuses
root); Redis runs as production runs it (``docker-compose.yml``): an ACL file, so the tenants' ACL users
survive a restart, and an append-only file, so keys (FSM state, heartbeats) do too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.e2e_support import UpProcess

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_binaries() -> str | None:
    """Why the private servers cannot run here, or None."""
    for name in ("initdb", "pg_ctl"):
        if not (PG_BIN / name).exists():
            return f"PostgreSQL 15 binaries are not installed ({PG_BIN / name} is missing)"
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and there is no {PG_USER!r} OS user to run PostgreSQL as"
    return None


def _wait_port(port: int, *, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            listening = sock.connect_ex(("127.0.0.1", port)) == 0
        if listening == up:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still {'closed' if up else 'open'} after {timeout:.0f} s")


@dataclass
class PrivatePostgres:
    """A PostgreSQL 15 cluster under ``root`` on a spare port (trust auth, 127.0.0.1 only)."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = PG_USER if os.geteuid() == 0 else None
        done = subprocess.run(
            [str(a) for a in args], user=user, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stdout}{done.stderr}")
        return done

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n"
                # a test cluster: no fsync (a stopped server keeps its data in the page cache)
                "fsync = off\nfull_page_writes = off\nshared_buffers = 64MB\n"
            )

    def start(self) -> None:
        self._run(
            PG_BIN / "pg_ctl", "-D", self.data, "-w", "-t", "60", "-l", self.root / "postgres.log",
            "start",
        )  # fmt: skip
        _wait_port(self.port, up=True)

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, then a clean shutdown; ``immediate``: a crash."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-m", mode, "stop", check=False)
        _wait_port(self.port, up=False)

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "postgres.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class PrivateRedis:
    """A Redis server under ``root`` on a spare port, configured like production's: an ACL file
    (tenants' ACL users survive a restart) and an append-only file (so do keys)."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        acl = self.root / "users.acl"
        acl.touch(exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.root), "--save", "", "--appendonly", "yes",
                "--aclfile", str(acl), "--logfile", str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it (Redis flushes its append-only file first)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        _wait_port(self.port, up=False)


@dataclass
class FaultServers:
    postgres: PrivatePostgres
    redis: PrivateRedis
    root: Path

    @property
    def database_url(self) -> str:
        return self.postgres.url("botfleet")


@dataclass
class FaultPlatform:
    """A running ``botfleet up`` on the private servers, with one tenant bought, paid and running."""

    servers: FaultServers
    up: UpProcess
    api_url: str
    admin_key: str
    emulator_url: str
    spare_tokens: list[str]  # unsold demo bot tokens, for purchases after an outage
    owner_id: int  # the owner's Telegram id (sales bot and tenant bot)
    sales_bot_id: int
    bot_id: int  # the tenant's bot
    slug: str
    schema: str
    zone: str
    pooled: bool  # the tenant bot reaches PostgreSQL through ``up``'s PgBouncer (else directly)


# -- watching the platform ----------------------------------------------------------------------------


@dataclass
class ReadyzProbe:
    """Polls the API's ``/readyz`` in the background and records (monotonic time, status code)."""

    url: str
    interval: float = 0.25
    samples: list[tuple[float, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=3.0) as http:
            while True:
                try:
                    code = (await http.get(self.url)).status_code
                except httpx.HTTPError:
                    code = 0  # no answer at all
                self.samples.append((time.monotonic(), code))
                await asyncio.sleep(self.interval)

    def start(self) -> ReadyzProbe:
        self._task = asyncio.create_task(self._run(), name="readyz-probe")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def codes_between(self, start: float, end: float) -> list[int]:
        return [code for at, code in self.samples if start <= at <= end]

    def first_after(self, start: float, code: int) -> float | None:
        """When ``/readyz`` first answered ``code`` at or after ``start``."""
        return next((at for at, c in self.samples if at >= start and c == code), None)


async def until(
    check: Callable[[], Awaitable[Any]], what: str, *, timeout: float = 30.0, every: float = 0.25
) -> Any:
    """Await ``check()`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = await check()
        except Exception as exc:  # the dependency may still be coming back
            result, last = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")
        await asyncio.sleep(every)
