"""The whole journey on a real ``botfleet up``, through public surfaces only.

An owner buys a bot in the sales bot and pays on the YooKassa stand-in's checkout page; the worker
provisions the tenant; the owner is told it is live, opens /admin in the new bot and adds a service, a
staff member and working hours; a customer books a slot; the owner is notified and sees the booking
in /admin's schedule; the admin API shows the tenant, payment, subscription and deployment, and the
CLI the tenant. Ctrl-C then stops everything: exit code 0, no local tenant bot left behind (docker containers keep
running by design: a restarted worker adopts them).
Runs on the process runtime, and on the docker runtime where an engine answers and the image exists.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from sandbox.telegram import TelegramSandbox
from tests.support.e2e_support import (
    VENV_PYTHON,
    AdminApi,
    StartPlatform,
    any_message,
    bot_id_of,
    buy_bot,
    clean_env,
    customer_books,
    docker_skip_reason,
    owner_sets_up,
    pid_alive,
    press_pay,
    processes_under,
    sales_bot_id,
    say,
    tap,
    text_of,
)


def cli_tenant(up_env: dict[str, str], data_dir: Path, slug: str) -> dict[str, object]:
    """``botfleet tenants show <slug>`` against the same database, as an operator would run it."""
    env = clean_env(
        BOTFLEET_DATABASE_URL=up_env["BOTFLEET_DATABASE_URL"],
        BOTFLEET_TENANT_ROLE_PREFIX=up_env["BOTFLEET_TENANT_ROLE_PREFIX"],
        BOTFLEET_MASTER_KEY_FILE=str(data_dir / "master.key"),
    )
    done = subprocess.run(
        [str(VENV_PYTHON), "-m", "cli.main", "tenants", "show", slug],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def container_running(container_id: str) -> bool:
    """Whether the docker container runs (``docker inspect``)."""
    done = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", container_id],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() == "true"


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["process", pytest.param("docker", marks=pytest.mark.docker)])
async def test_owner_buys_customer_books_owner_sees(
    runtime: str, start_platform: StartPlatform, tmp_path: Path
) -> None:
    if runtime == "docker" and (reason := docker_skip_reason()):
        pytest.skip(reason)
    up = await start_platform(runtime=runtime)
    banner = up.banner
    assert banner is not None and banner.runtime == runtime and len(banner.tokens) == 3
    token = banner.tokens[0]
    bot_id = bot_id_of(token)
    api = AdminApi(banner.api_url, banner.admin_key)
    try:
        async with TelegramSandbox(banner.emulator_url) as sandbox:
            # The owner buys and pays on the checkout page.
            owner = await sandbox.user(
                bot_id=await sales_bot_id(sandbox), first_name="Ivan", language_code="en"
            )
            pay_url = await buy_bot(owner, token=token, business="Ivan's <Barbershop>")
            await press_pay(pay_url)
            await any_message(owner, "Payment received: 990 ₽", timeout=30)
            live = await any_message(owner, "is live", timeout=90)
            assert "@demo_booking_1_bot" in text_of(live)

            # The owner sets the new bot up as a customer would need it.
            owner_in_bot = sandbox.as_user(bot_id=bot_id, user_id=owner.id)
            await owner_sets_up(owner_in_bot)

            # A customer books; the owner is told and sees it in tomorrow's schedule.
            customer = await sandbox.user(bot_id=bot_id, first_name="Anna", language_code="en")
            booked = await customer_books(customer, name="Anna K", phone="+79161234567")
            assert "Haircut" in text_of(booked) and "Ivan" in text_of(booked)
            note = await any_message(owner_in_bot, "New booking")
            assert "Anna K" in text_of(note) and "+79161234567" in text_of(note)
            await say(owner_in_bot, "/admin", "Owner menu")
            schedule = await tap(owner_in_bot, "1 booking", text="📋 Tomorrow")
            assert "1 booking" in text_of(schedule)
            assert "Haircut · Ivan · Anna K (confirmed)" in text_of(schedule)

        # The admin API shows the tenant, its payment, subscription and deployment.
        tenant = await api.tenant_of_bot(bot_id)
        slug = tenant["slug"]
        assert tenant["display_name"] == "Ivan's <Barbershop>"
        assert tenant["owner_telegram_ids"] == [owner.id]
        assert tenant["status"] == "active" and tenant["desired_state"] == "running"
        assert token not in json.dumps(tenant)
        payments = (await api.get("/payments", tenant=slug))["items"]
        assert [(p["status"], p["amount"], p["purpose"]) for p in payments] == [
            ("succeeded", "990.00", "purchase")
        ]
        [subscription] = (await api.get(f"/tenants/{slug}/subscriptions"))["items"]
        assert subscription["status"] == "active" and subscription["plan_code"] == "month"
        deployment = await api.wait_deployment(slug)
        assert deployment["runtime"] == runtime and deployment["container_id"]
    finally:
        await api.aclose()

    # The operator's CLI sees the same tenant, token masked.
    shown = await asyncio.to_thread(cli_tenant, up.env, tmp_path / "data", slug)
    assert shown["slug"] == slug and shown["status"] == "active"
    assert token not in json.dumps(shown)

    # Ctrl-C: everything stops cleanly; no local tenant bot is left running.
    assert await up.interrupt() == 0, up.stderr_tail()
    assert "botfleet stopped." in up.stderr_tail(5) + up.stdout
    if runtime == "process":
        assert not pid_alive(int(deployment["container_id"]))
        assert processes_under(tmp_path) == []
    else:  # containers outlive `up` by design (the fixture removes them)
        assert await asyncio.to_thread(container_running, deployment["container_id"])
