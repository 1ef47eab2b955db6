"""``botfleet up`` from a fresh clone, as a newcomer runs it: no configuration at all.

The clone's own code runs (``python -m cli.main up`` from the clone, with the repository's virtual
environment), on embedded PostgreSQL and Redis with their data in the clone's ``.botfleet``. It must
answer ``/readyz``, stop on Ctrl-C with exit code 0, and leave no PostgreSQL or Redis behind. (The
clone is of HEAD: uncommitted changes are not what a newcomer gets, so they are not tested here.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.e2e_support import REPO_ROOT, UpProcess, clean_env, free_port, processes_under


@contextlib.contextmanager
def cloned(*, parent_mode: int) -> Iterator[Path]:
    """``git clone`` of this repository's HEAD into a new folder of mode ``parent_mode``; removed
    afterwards with anything still running from it (only after a failure: tests assert none)."""
    parent = Path(tempfile.mkdtemp(prefix="botfleet-clone-"))
    parent.chmod(parent_mode)
    clone = parent / "botfleet"
    try:
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=120)
        yield clone
    finally:
        for pid, _ in processes_under(parent):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def fresh_clone() -> Iterator[Path]:
    """A clone in a folder other users can traverse (the embedded PostgreSQL runs as an
    unprivileged user when we are root)."""
    with cloned(parent_mode=0o755) as clone:
        yield clone


def git_status(clone: Path) -> str:
    """``git status --porcelain`` of the clone ("" when clean)."""
    done = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    return done.stdout


def data_folder(clone: Path) -> dict[str, str | bool]:
    """What ``up`` keeps in the clone's ``.botfleet``."""
    data = clone / ".botfleet"
    return {
        "postgres": (data / "postgres" / "data" / "PG_VERSION").exists(),
        "redis_acl": (data / "redis" / "users.acl").exists(),
        "admin_key": (data / "admin.key").read_text().strip(),
    }


async def wait_ready(url: str, *, timeout: float = 120.0) -> httpx.Response:
    """GET ``url`` until it answers 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                response = await http.get(url)
                if response.status_code == 200:
                    return response
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} not ready in {timeout:.0f} s")
            await asyncio.sleep(0.3)


@pytest.mark.slow
async def test_up_from_a_fresh_clone_starts_answers_and_stops(fresh_clone: Path) -> None:
    env = clean_env(PYTHONPATH=str(fresh_clone))
    assert not any(key.startswith("BOTFLEET_") for key in env)
    up = UpProcess(cwd=fresh_clone, env=env, logs=fresh_clone.parent / "logs", port=free_port())
    try:
        banner = await up.start(timeout=180)
        assert banner.api_url.startswith("http://127.0.0.1:")
        assert "PostgreSQL (embedded)" in up.stdout and "Redis (embedded)" in up.stdout
        assert banner.runtime == "process" and len(banner.tokens) == 3
        ready = await wait_ready(banner.api_url + "/readyz")
        assert ready.json()
        data = await asyncio.to_thread(data_folder, fresh_clone)
        assert data == {"postgres": True, "redis_acl": True, "admin_key": banner.admin_key}
        running = await asyncio.to_thread(processes_under, fresh_clone)
        assert any("redis-server" in cmd for _, cmd in running), running
        assert any("postgres" in cmd for _, cmd in running), running

        assert await up.interrupt() == 0, up.stderr_tail()
        assert await asyncio.to_thread(processes_under, fresh_clone) == []
        # git ignores the data folder: the clone stays clean.
        assert await asyncio.to_thread(git_status, fresh_clone) == ""
    finally:
        up.kill()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
async def test_up_in_a_folder_postgres_cannot_reach_says_what_to_do() -> None:
    """A clone in root's private home: the unprivileged PostgreSQL user cannot enter it."""
    with cloned(parent_mode=0o700) as clone:
        up = UpProcess(
            cwd=clone, env=clean_env(PYTHONPATH=str(clone)), logs=clone / "logs", port=free_port()
        )
        try:
            with pytest.raises(RuntimeError, match="exited with 2") as failed:
                await up.start(timeout=60)
            assert f"chmod o+x {clone.parent}" in str(failed.value)
            assert "--data-dir" in str(failed.value)
        finally:
            up.kill()
