"""Attacks on ``POST /webhooks/yookassa`` and on API bodies, made over HTTP against the real API.

``botfleet api`` runs as a subprocess (uvicorn, exactly as operators start it) on a free port, with
billing wired to a YooKassa stand-in and ``BOTFLEET_YOOKASSA_TRUSTED_PROXIES`` naming one reverse
proxy (a small forwarding proxy of this test on 127.0.0.88). The attacker is a local process on
127.0.0.1: it forges ``X-Forwarded-For`` (directly and through the proxy), declares a huge
``Content-Length``, streams an endless chunked body and sends 100000 nested ``[``. A genuine
notification of the stand-in, relayed by the trusted proxy, is still applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web

from fleet.apikeys import ApiKeyService
from fleet.billing.checkout import Order
from fleet.billing.wiring import open_billing
from fleet.secrets import SecretBox, generate_master_key
from fleet.settings import YOOKASSA_NETWORKS, load_settings
from sandbox.testing import new_bot_token
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn
from sandbox.yookassa.notifier import NotificationSenderConfig
from tests.support.billing_fixtures import plan  # noqa: F401  (a plan of this test alone, removed after it)

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN_SOURCE = "127.0.0.77"  # the stand-in notifies from here (an allowed YooKassa network here)
PROXY_ADDRESS = "127.0.0.88"  # the one trusted reverse proxy
ATTACKER = "127.0.0.1"
FORGED = "185.71.76.10"  # inside YooKassa's real networks
WEBHOOK_CAP = 64 * 1024
API_CAP = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(source: str = ATTACKER, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=source), timeout=15, **options
    )


class ApiProcess:
    """``python -m cli.main api`` in its own process group; killed on exit."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = cwd / "api.log"
        with open(self.logs, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "api",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=cwd,
                env={**env, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        return self.logs.read_text(errors="replace")[-4000:]

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"`botfleet api` exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"`botfleet api` not ready:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


async def _start_proxy(target: str) -> tuple[web.AppRunner, str]:
    """A reverse proxy on ``PROXY_ADDRESS`` that appends its peer to ``X-Forwarded-For``, as nginx's
    ``$proxy_add_x_forwarded_for`` does, and connects to the API from ``PROXY_ADDRESS``."""
    http = _client(PROXY_ADDRESS)

    async def forward(request: web.Request) -> web.Response:
        previous = request.headers.get("X-Forwarded-For")
        hop = request.remote or ""
        headers = {
            "Content-Type": request.headers.get("Content-Type", "application/json"),
            "X-Forwarded-For": f"{previous}, {hop}" if previous else hop,
        }
        answer = await http.post(
            f"{target}{request.path_qs}", content=await request.read(), headers=headers
        )
        return web.Response(status=answer.status_code, body=answer.content)

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    app.on_cleanup.append(lambda _: http.aclose())
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, PROXY_ADDRESS, port).start()
    return runner, f"http://{PROXY_ADDRESS}:{port}"


def _raw_exchange(port: int, head: bytes, *, source: str = ATTACKER, body: bytes = b"") -> str:
    """Send ``head`` (and ``body``) on a plain socket and return the status line of the answer,
    waiting at most 10 s; the request is never completed by us unless ``body`` completes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(head)
        if body:
            with contextlib.suppress(OSError):  # the server may stop reading and answer first
                s.sendall(body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode("latin-1")


@pytest.fixture
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
async def standin() -> AsyncIterator[YooKassaStandIn]:
    config = NotificationSenderConfig(retry_initial=0.05, retry_max=0.2, max_attempts=3, timeout=5)
    async with YooKassaStandIn.start(host="127.0.0.1", port=0, notifier=config) as yk:
        yield yk


@pytest.fixture
def api_env(
    database_url: str, redis_url: str, master_key: str, standin: YooKassaStandIn, tmp_path: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    env.update(
        BOTFLEET_DATABASE_URL=database_url,
        BOTFLEET_REDIS_URL=redis_url,
        BOTFLEET_MASTER_KEY=master_key,
        BOTFLEET_TENANT_ROLE_PREFIX="x" + secrets.token_hex(4) + "_",
        BOTFLEET_RUNTIME="process",
        BOTFLEET_PROCESS_STATE_DIR=str(tmp_path / "processes"),
        BOTFLEET_YOOKASSA_SHOP_ID=DEFAULT_SHOP_ID,
        BOTFLEET_YOOKASSA_SECRET_KEY=DEFAULT_SECRET_KEY,
        BOTFLEET_YOOKASSA_API_URL=standin.api_url,
        BOTFLEET_YOOKASSA_RETURN_URL="https://t.me/botfleet_sales_bot",
        BOTFLEET_YOOKASSA_ALLOWED_NETWORKS=",".join([*YOOKASSA_NETWORKS, f"{STANDIN_SOURCE}/32"]),
        BOTFLEET_YOOKASSA_TRUSTED_PROXIES=PROXY_ADDRESS,
        BOTFLEET_SANDBOX="true",  # the stand-in's API is not YooKassa's: declared, or refused
        BOTFLEET_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture
async def api(api_env: dict[str, str], tmp_path: Path) -> AsyncIterator[ApiProcess]:
    process = ApiProcess(api_env, tmp_path)
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def _pending_purchase(
    api_env: dict[str, str], pool: asyncpg.Pool, plan_code: str
) -> tuple[int, str]:
    """A buyer's checkout, as the sales bot makes it: (tenant id, the stand-in's payment id)."""
    settings = load_settings(
        **{
            k.removeprefix("BOTFLEET_").lower(): v
            for k, v in api_env.items()
            if k.startswith("BOTFLEET_")
        }
    )
    token = new_bot_token()
    bot_id = int(token.split(":")[0])
    async with open_billing(
        settings=settings, pool=pool, secrets=SecretBox(api_env["BOTFLEET_MASTER_KEY"])
    ) as billing:
        checkout = await billing.checkout.purchase(
            Order(
                owner_telegram_id=secrets.randbelow(10**9) + 10**6,
                plan_code=plan_code,
                display_name="Forged Barbershop",
                bot_token=token,
                bot_id=bot_id,
                bot_username=f"shop{bot_id}_bot",
            )
        )
    provider_id = await pool.fetchval(
        "SELECT provider_payment_id FROM control.payments WHERE tenant_id = $1", checkout.tenant_id
    )
    return checkout.tenant_id, provider_id


async def _payment_state(pool: asyncpg.Pool, tenant_id: int) -> tuple[str, bool, str, int]:
    row = await pool.fetchrow(
        "SELECT p.status, p.applied_at IS NOT NULL AS applied, t.status AS tenant_status, "
        "(SELECT count(*) FROM control.jobs j WHERE j.tenant_id = t.id) AS jobs "
        "FROM control.payments p JOIN control.tenants t ON t.id = p.tenant_id WHERE t.id = $1",
        tenant_id,
    )
    return row["status"], row["applied"], row["tenant_status"], row["jobs"]


def _notification(provider_id: str) -> dict[str, Any]:
    return {
        "type": "notification",
        "event": "payment.succeeded",
        "object": {"id": provider_id, "status": "succeeded"},
    }


async def test_forged_forwarded_for_is_refused_and_a_relayed_notification_is_applied(
    api: ApiProcess,
    api_env: dict[str, str],
    standin: YooKassaStandIn,
    pool: asyncpg.Pool,
    plan: asyncpg.Record,  # noqa: F811
) -> None:
    tenant_id, provider_id = await _pending_purchase(api_env, pool, plan["code"])
    standin.succeed(provider_id)  # paid at YooKassa; no notification reached us yet
    before = await _payment_state(pool, tenant_id)
    assert before == ("pending", False, "new", 0)
    webhook = f"{api.url}/webhooks/yookassa"
    runner, proxy = await _start_proxy(api.url)
    try:
        async with _client(ATTACKER) as attacker:
            # 1. A local process claims to be YooKassa (as uvicorn trusted from 127.0.0.1).
            for forged in (FORGED, f"{FORGED}, {FORGED}", f"1.2.3.4, {FORGED}"):
                answer = await attacker.post(
                    webhook,
                    json=_notification(provider_id),
                    headers={
                        "X-Forwarded-For": forged,
                        "X-Real-IP": FORGED,
                        "Forwarded": f"for={FORGED}",
                    },
                )
                assert answer.status_code == 403, answer.text
                assert "YooKassa's networks" in answer.json()["detail"]
            # 2. Through the trusted proxy: the proxy appends the attacker's real address.
            answer = await attacker.post(
                f"{proxy}/webhooks/yookassa",
                json=_notification(provider_id),
                headers={"X-Forwarded-For": FORGED},
            )
            assert answer.status_code == 403, answer.text
        assert await _payment_state(pool, tenant_id) == before, "a forged notification applied"

        # 3. The genuine notification, relayed by the trusted proxy, is applied.
        standin.set_webhook(f"{proxy}/webhooks/yookassa", source_address=STANDIN_SOURCE)
        standin.notifier.notify("payment.succeeded", standin.ledger.get(provider_id).to_api())
        await standin.wait_notifications(timeout=20)
        delivery = standin.notifier.deliveries[-1]
        assert delivery.delivered, delivery.to_json()
        status, applied, tenant_status, jobs = await _payment_state(pool, tenant_id)
        assert (status, applied, tenant_status, jobs) == ("succeeded", True, "provisioning", 1)
    finally:
        await runner.cleanup()


def test_huge_content_length_is_413_without_reading_the_body(api: ApiProcess) -> None:
    port = api.port
    for path, headers in (
        ("/webhooks/yookassa", ""),
        ("/webhooks/yookassa", "Expect: 100-continue\r\n"),
        ("/api/v1/plans", "Authorization: Bearer bfk_whatever\r\n"),
    ):
        for length in (10**12, API_CAP + 1 if path.startswith("/api") else WEBHOOK_CAP + 1):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                f"{headers}Content-Length: {length}\r\n\r\n"
            ).encode()
            started = time.monotonic()
            status = _raw_exchange(port, head, source=STANDIN_SOURCE)  # no body is ever sent
            assert status.startswith("HTTP/1.1 413"), (path, length, status)
            assert time.monotonic() - started < 5


def _chunked(size: int, chunk: int = 16 * 1024) -> bytes:
    piece = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
    return piece * (size // chunk + 1)  # never terminated: the server must stop on its own


def test_chunked_body_over_the_cap_is_413(api: ApiProcess) -> None:
    for path, extra, cap in (
        ("/webhooks/yookassa", "", WEBHOOK_CAP),
        ("/api/v1/plans", "Authorization: Bearer bfk_whatever\r\n", API_CAP),
    ):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            f"{extra}Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        status = _raw_exchange(api.port, head, source=STANDIN_SOURCE, body=_chunked(cap + 1))
        assert status.startswith("HTTP/1.1 413"), (path, status)


async def test_chunked_body_streamed_by_httpx_is_413(api: ApiProcess) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * (16 * 1024)  # 80 KiB of whitespace: valid JSON padding, over the cap

    async with _client(STANDIN_SOURCE) as yookassa:
        answer = await yookassa.post(
            f"{api.url}/webhooks/yookassa",
            content=body(),
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


async def test_deeply_nested_json_is_400(api: ApiProcess, pool: asyncpg.Pool) -> None:
    created = await ApiKeyService(pool=pool).create(
        scopes=["admin"], name="nested-json attack", actor="test"
    )
    nested = b"[" * 60_000  # under the webhook's cap, far beyond any parser's recursion limit
    inside = b'{"type":"notification","event":"payment.succeeded","object":' + b"[" * 60_000
    try:
        async with _client(STANDIN_SOURCE) as yookassa:
            for body in (nested, inside, b"{" + b'"a":{' * 10_000):
                answer = await yookassa.post(
                    f"{api.url}/webhooks/yookassa",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                assert answer.status_code == 400, answer.text
        auth = {"Authorization": f"Bearer {created.key}", "Content-Type": "application/json"}
        async with _client(ATTACKER) as admin:
            for path, extra in (
                ("/api/v1/plans", {}),
                ("/api/v1/plans", {"Idempotency-Key": secrets.token_hex(8)}),
                ("/api/v1/tenants", {}),
            ):
                for body in (b"[" * 100_000, b'{"code":' + b"[" * 100_000):
                    answer = await admin.post(
                        f"{api.url}{path}", content=body, headers={**auth, **extra}
                    )
                    assert answer.status_code == 400, (path, answer.status_code, answer.text)
            # the API still serves
            assert (await admin.get(f"{api.url}/api/v1/plans", headers=auth)).status_code == 200
    finally:
        await pool.execute("DELETE FROM control.api_keys WHERE id = $1", created.record["id"])
    assert "Traceback" not in api.log_tail()
