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

from fleet.settings import Settings
from tests.support.e2e_support import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SERVICES = {
    "postgres",
    "pgbouncer",
    "redis",
    "db-roles",
    "migrate",
    "api",
    "worker",
    "sales-bot",
    "lifecycle",
}
LONG_RUNNING = SERVICES - {"db-roles", "migrate"}
PASSWORDS = (
    "POSTGRES_SUPERUSER_PASSWORD=pg-root\nPOSTGRES_PASSWORD=pg-secret\n"
    "POSTGRES_PROVISIONER_PASSWORD=pg-prov\nREDIS_PASSWORD=redis-secret\n"
    "POSTGRES_POOLER_PASSWORD=pg-pooler\n"
)


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
    done = compose_config(tmp_path, PASSWORDS)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == SERVICES
    for name in LONG_RUNNING:
        assert services[name]["restart"] in {"unless-stopped", "always"}, name
    for name in LONG_RUNNING:
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
    # Least privilege: services log in as `botfleet`; only the worker and `migrate` also as the
    # provisioner; the superuser's password reaches the database and the db-roles one-shot only.
    for name, env in ((n, s.get("environment") or {}) for n, s in services.items()):
        url = str(env.get("BOTFLEET_DATABASE_URL", ""))
        assert not url or url.startswith("postgresql://botfleet:"), name
        provisioner = "BOTFLEET_PROVISIONER_DATABASE_URL" in env
        assert provisioner == (name in {"worker", "migrate"}), name
        assert ("pg-root" in str(env)) == (name in {"postgres", "db-roles"}), name
        assert ("pg-prov" in str(env)) == (name in {"worker", "migrate", "db-roles"}), name
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "postgres"
    assert services["migrate"]["depends_on"]["db-roles"]["condition"] == (
        "service_completed_successfully"
    )
    assert {"pgdata", "redisdata"} <= set(config["volumes"])


def test_compose_file_refuses_a_missing_password(tmp_path: Path) -> None:
    done = compose_config(tmp_path, PASSWORDS.replace("POSTGRES_PASSWORD=pg-secret\n", ""))
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


def test_every_long_running_service_has_a_health_check_the_image_can_run() -> None:
    """Read without Compose (PyYAML resolves the file's anchors and merge keys): every long-running
    service is health-checked with what its image has (pg_isready, redis-cli, python3; no curl), and
    the worker, sales bot and lifecycle probe the /readyz their BOTFLEET_HEALTH_PORT serves."""
    services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    assert set(services) == SERVICES
    assert "healthcheck" not in services["migrate"]  # one-shots
    assert "healthcheck" not in services["db-roles"]
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        test = " ".join(check["test"])
        assert "curl" not in test and "wget" not in test, name
        assert check["interval"] and check["retries"] >= 3, name
    for name in ("postgres", "pgbouncer", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL", name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert "pg_isready" in services["pgbouncer"]["healthcheck"]["test"][1]
    assert "PONG" in services["redis"]["healthcheck"]["test"][1]
    api = services["api"]["healthcheck"]["test"]
    assert api[:3] == ["CMD", "python3", "-c"] and "127.0.0.1:8000/readyz" in api[3]
    for name in ("worker", "sales-bot", "lifecycle"):
        env = services[name]["environment"]
        port = env["BOTFLEET_HEALTH_PORT"]
        # Prometheus scrapes over the compose network.
        assert env["BOTFLEET_HEALTH_HOST"] == "0.0.0.0", name  # noqa: S104
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python3", "-c"], name
        assert f"http://127.0.0.1:{port}/readyz" in test[3], name
        assert services[name]["healthcheck"]["start_period"], name
        # The check is a valid Python one-liner that fails (raises) on a 503.
        compile(test[3], f"<{name} healthcheck>", "exec")
        assert "urlopen" in test[3]


def test_tenants_have_a_network_of_their_own() -> None:
    """Issue 14, item 3: tenant bots run on the `tenants` network, where only the PostgreSQL pooler and
    Redis are; no platform service (API, worker, sales bot, lifecycle) is on it, and the worker starts
    bots there, never on the host's or the platform's network."""
    # Read without Compose (PyYAML resolves anchors and merge keys), so it runs everywhere;
    # test_compose_file_validates checks the file with Compose where it is installed.
    config = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    services = config["services"]

    def networks_of(name: str) -> set[str]:
        networks = services[name].get("networks") or {}
        return set(networks)

    assert {"botfleet", "tenants"} <= set(config["networks"])
    tenants_name = config["networks"]["tenants"].get("name", "tenants")
    assert tenants_name != config["networks"]["botfleet"].get("name", "botfleet")
    assert not config["networks"]["tenants"].get("internal")  # bots reach Telegram
    on_tenants = {name for name in services if "tenants" in networks_of(name)}
    # issue 17: bots reach PostgreSQL only through the pooler
    assert on_tenants == {"pgbouncer", "redis"}
    worker = services["worker"]["environment"]
    assert worker["BOTFLEET_TENANT_DATABASE_HOST"] == "pgbouncer"
    assert worker["BOTFLEET_TENANT_DATABASE_POOLER"] == "true"
    for name in SERVICES:
        assert services[name].get("network_mode") != "host", name
        assert "botfleet" in networks_of(name), name
    worker_env = services["worker"]["environment"]
    assert worker_env["BOTFLEET_TENANT_NETWORK"] == tenants_name
    assert worker_env["BOTFLEET_TENANT_REDIS_HOST"] == "redis"
    # Only the worker has the Docker socket.
    for name in SERVICES - {"worker"}:
        volumes = [
            str(v.get("source", v) if isinstance(v, dict) else v)
            for v in services[name].get("volumes", [])
        ]
        assert not any("docker.sock" in v for v in volumes), name
