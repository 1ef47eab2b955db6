"""The alerting rules can be used: every metric they name is exported by a real process, and every alert
has its runbook entry in README.md.

The API's ``/metrics`` is scraped from the app; the deploy worker, the sales bot and the lifecycle
runner are started for real (``botfleet worker``, ``botfleet sales-bot``, ``botfleet billing
lifecycle`` with ``BOTFLEET_HEALTH_PORT``), on a database of their own, and scraped once their
``/readyz`` answers 200; then they are stopped with SIGTERM and must exit cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from control_plane.app import create_app
from fleet.settings import load_settings
from sandbox.telegram import TelegramEmulator
from sandbox.testing import new_bot_token, telegram_emulator  # noqa: F401
from tests.support.api_support import client_for

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "ops" / "prometheus" / "botfleet.rules.yml"
README = REPO_ROOT / "README.md"
# Series Prometheus makes itself (not exported by any target).
PROMETHEUS_BUILTINS = {"up"}
PROMQL_WORDS = {
    "sum", "by", "without", "delta", "increase", "rate", "irate", "max", "min", "avg", "count",
    "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "humanizeDuration", "histogram_quantile", "absent", "time", "clamp_min", "clamp_max",
}  # fmt: skip


def alerts() -> list[dict]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers outside label matchers, strings, ranges
    and durations that are not PromQL's own words."""
    bare = re.sub(r"\{[^}]*\}", " ", expr)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r'"[^"]*"', " ", bare)
    names = set(re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return names - PROMQL_WORDS


def exported(text: str) -> set[str]:
    """Every series name a /metrics text offers (counters under their ``_total`` name too)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "counter":
                names.add(name.removesuffix("_total") + "_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def readme_alert_sections() -> dict[str, str]:
    """``### <name>`` headings under ``## Alerts`` and their text."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Alerts\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Alerts' section"
    parts = re.split(r"^### (\S+)\n", match.group(1), flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_alert_is_complete_and_has_a_runbook_section() -> None:
    rules = alerts()
    assert len(rules) >= 8
    sections = readme_alert_sections()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"] == f"README.md#{name.lower()}", name
        assert name in sections, f"README.md '## Alerts' has no '### {name}'"
        assert len(sections[name].split()) >= 20, f"the runbook of {name} says too little"
    # Operators are told how to see and retry what failed.
    runbook = " ".join(" ".join(sections.values()).split())
    for command in (
        "`botfleet events list --failed`",
        "`botfleet events retry ID`",
        "`botfleet jobs list --status dead`",
        "`botfleet jobs retry ID`",
    ):
        assert command in runbook, command


def test_the_rules_cover_what_a_paying_owner_relies_on() -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in alerts()))
    for metric in (
        "botfleet_events_oldest_pending_age_seconds",
        "botfleet_events_failed",
        "botfleet_jobs",
        "botfleet_tenants",
        "botfleet_tenants_without_heartbeat",
        "botfleet_api_requests_total",
        "botfleet_loop_restarts_total",
        "botfleet_loop_healthy",
        "botfleet_postgres_server_connections",
    ):
        assert metric in used, metric


# -- real scrapes ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _scrape_when_ready(port: int, process: asyncio.subprocess.Process) -> str:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"the process exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                ready = await client.get("/readyz")
                if ready.status_code == 200:
                    assert (await client.get("/healthz")).status_code == 200
                    return (await client.get("/metrics")).text
            if time.monotonic() > deadline:
                raise AssertionError(f"/readyz on port {port} never answered 200")
            await asyncio.sleep(0.3)


@pytest.mark.slow  # starts every process of the platform: ~8 s
async def test_every_metric_of_the_rules_is_exported(
    own_database: str,
    database_url: str,
    pool: asyncpg.Pool,
    redis: Redis,
    redis_url: str,
    telegram_emulator: TelegramEmulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    master_key = Fernet.generate_key().decode()
    sales_token = new_bot_token()
    telegram_emulator.register_bot(sales_token, username="rules_sales_bot")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    base_env.update(
        BOTFLEET_DATABASE_URL=own_database,
        BOTFLEET_REDIS_URL=redis_url,
        BOTFLEET_MASTER_KEY=master_key,
        BOTFLEET_TENANT_ROLE_PREFIX="x" + secrets.token_hex(4) + "_",
        BOTFLEET_RUNTIME="process",
        BOTFLEET_PROCESS_STATE_DIR=str(tmp_path / "processes"),
        BOTFLEET_TELEGRAM_API_BASE=telegram_emulator.base_url,
        BOTFLEET_SALES_BOT_TOKEN=sales_token,
        BOTFLEET_YOOKASSA_SHOP_ID="123456",
        BOTFLEET_YOOKASSA_SECRET_KEY="test_secret",
        BOTFLEET_YOOKASSA_RETURN_URL="https://t.me/rules_sales_bot",
        BOTFLEET_HEALTH_HOST="127.0.0.1",
        BOTFLEET_LOG_LEVEL="WARNING",
    )
    commands = {
        "worker": ["worker"],
        "sales-bot": ["sales-bot"],
        "lifecycle": ["billing", "lifecycle"],
    }
    processes: dict[str, tuple[asyncio.subprocess.Process, int]] = {}
    scrapes: dict[str, str] = {}
    try:
        for name, args in commands.items():
            port = _free_port()
            processes[name] = (
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "cli.main",
                    *args,
                    cwd=tmp_path,  # no .env of the checkout
                    env={
                        **base_env,
                        "BOTFLEET_HEALTH_PORT": str(port),
                        "PYTHONPATH": str(REPO_ROOT),
                    },
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                ),
                port,
            )
        for name, (process, port) in processes.items():
            scrapes[name] = await _scrape_when_ready(port, process)
    finally:
        for process, _ in processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for name, (process, _) in processes.items():
            _, stderr = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, f"{name}: {stderr.decode()[-3000:]}"

    settings = load_settings(database_url=database_url, redis_url=redis_url, master_key=master_key)
    app = create_app(settings, pool=pool, redis=redis)
    async with app.router.lifespan_context(app), client_for(app) as client:
        await client.post("/webhooks/yookassa", json={})  # the webhook's series exists
        scrapes["api"] = (await client.get("/metrics")).text

    for name in ("worker", "sales-bot", "lifecycle"):
        assert f'process="{name}"' in scrapes[name], name
    assert 'botfleet_loop_healthy{loop="idempotency_purge",process="api"} 1.0' in scrapes["api"]
    available = set().union(*(exported(text) for text in scrapes.values()))
    for rule in alerts():
        missing = metric_names(rule["expr"]) - available - PROMETHEUS_BUILTINS
        assert not missing, f"{rule['alert']} uses metrics nobody exports: {sorted(missing)}"
