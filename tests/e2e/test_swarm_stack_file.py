"""``ops/swarm/pgbouncer-stack.yml`` (the tenants' PgBouncer as a swarm service) validates with the
docker CLI and stays in step with docker-compose.yml: the name and port the worker gives the bots,
compose's image and ``pgbouncer.ini``, the tenants' network."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.support.e2e_support import REPO_ROOT

STACK_FILE = REPO_ROOT / "ops" / "swarm" / "pgbouncer-stack.yml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def test_the_stack_matches_compose() -> None:
    stack = yaml.safe_load(STACK_FILE.read_text())
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    worker = compose["services"]["worker"]["environment"]
    (name, service), *others = stack["services"].items()
    assert not others
    assert name == worker["BOTFLEET_TENANT_DATABASE_HOST"]
    assert service["image"] == compose["services"]["pgbouncer"]["image"]
    assert service["deploy"]["endpoint_mode"] == "dnsrr"
    assert service["deploy"]["update_config"]["order"] == "stop-first"  # never twice the bound
    network = stack["networks"][service["networks"][0]]
    assert network["external"] and network["name"] == worker["BOTFLEET_TENANT_NETWORK"]
    config = stack["configs"][service["configs"][0]["source"]]
    assert (STACK_FILE.parent / config["file"]).resolve() == (
        REPO_ROOT / "ops" / "pgbouncer" / "pgbouncer.ini"
    )
    ini = (STACK_FILE.parent / config["file"]).read_text()
    assert f"listen_port = {worker['BOTFLEET_TENANT_DATABASE_PORT']}" in ini


def test_the_docker_cli_accepts_the_stack() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here")
    done = subprocess.run(
        ["docker", "stack", "config", "-c", str(STACK_FILE)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "POSTGRES_POOLER_PASSWORD": "pg-pooler"},
        check=False,
    )
    if done.returncode != 0 and "unknown command" in done.stderr:
        pytest.skip("this docker CLI has no `docker stack config`")
    assert done.returncode == 0, done.stderr
    assert "endpoint_mode: dnsrr" in done.stdout
