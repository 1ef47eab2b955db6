"""The production compose file validates, and ``.env.example`` documents every setting.

Validation uses whichever Compose exists here: Debian's ``docker-compose`` (1.29) or the ``docker
compose`` plugin; the tests skip, saying so, when neither does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from e2e_support import REPO_ROOT

from fleet.settings import Settings

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SERVICES = {"postgres", "redis", "migrate", "api", "worker", "sales-bot", "lifecycle"}
LONG_RUNNING = SERVICES - {"migrate"}


def compose_command() -> list[str]:
    """``docker-compose`` or ``docker compose``; skip when neither is installed."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    pytest.skip("neither docker-compose nor the docker compose plugin is installed")


def compose_config(project: Path, env: str) -> subprocess.CompletedProcess[str]:
    """``config`` of a copy of the compose file in ``project`` with ``env`` as its ``.env``."""
    shutil.copy(COMPOSE_FILE, project / "docker-compose.yml")
    (project / ".env").write_text(env, encoding="utf-8")
    return subprocess.run(
        [*compose_command(), "config"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_validates(tmp_path: Path) -> None:
    done = compose_config(tmp_path, "POSTGRES_PASSWORD=pg-secret\nREDIS_PASSWORD=redis-secret\n")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == SERVICES
    for name in LONG_RUNNING:
        assert services[name]["restart"] in {"unless-stopped", "always"}, name
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["restart"] == "no"
    # The worker drives the Docker engine and starts tenant bots on the compose network.
    worker = services["worker"]
    sockets = [str(v.get("source", v) if isinstance(v, dict) else v) for v in worker["volumes"]]
    assert any("/var/run/docker.sock" in v for v in sockets)
    assert worker["environment"]["BOTFLEET_RUNTIME"] == "docker"
    # The passwords reach the services' URLs, and the data lives in named volumes.
    assert "pg-secret@postgres:5432" in services["api"]["environment"]["BOTFLEET_DATABASE_URL"]
    assert "redis-secret@redis:6379" in services["api"]["environment"]["BOTFLEET_REDIS_URL"]
    assert {"pgdata", "redisdata"} <= set(config["volumes"])


def test_compose_file_refuses_a_missing_password(tmp_path: Path) -> None:
    done = compose_config(tmp_path, "REDIS_PASSWORD=redis-secret\n")
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr


def test_env_example_is_a_valid_env_for_compose(tmp_path: Path) -> None:
    if not ENV_EXAMPLE.exists():
        pytest.skip(".env.example is not written yet")
    done = compose_config(tmp_path, ENV_EXAMPLE.read_text(encoding="utf-8"))
    assert done.returncode == 0, done.stderr


def test_env_example_documents_every_setting() -> None:
    if not ENV_EXAMPLE.exists():
        pytest.skip(".env.example is not written yet")
    documented = set(re.findall(r"\bBOTFLEET_[A-Z0-9_]+", ENV_EXAMPLE.read_text(encoding="utf-8")))
    settings = {f"BOTFLEET_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings missing from .env.example"
    # Nothing stale: every other variable it names is one the compose file reads.
    compose = COMPOSE_FILE.read_text(encoding="utf-8")
    stale = [name for name in documented - settings if "${" + name not in compose]
    assert stale == [], "variables in .env.example that nothing reads"
