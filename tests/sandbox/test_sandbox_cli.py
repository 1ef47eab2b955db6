"""``botfleet sandbox`` starts both servers and stops on SIGINT."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

BOTFLEET = Path(sys.executable).with_name("botfleet")


@pytest.mark.slow  # starts the sandbox CLI process
async def test_cli_runs_both_servers_until_interrupted():
    process = await asyncio.create_subprocess_exec(
        str(BOTFLEET),
        "sandbox",
        "--telegram-port",
        "0",
        "--yookassa-port",
        "0",
        "--no-rate-limits",
        "--bot",
        "4242:CLI-token-abcdef=cli_demo_bot",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not any("Ctrl-C" in line for line in lines):
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the command exited early"
            lines.append(line.decode())
        urls = re.findall(r"http://127\.0\.0\.1:\d+\S*", "".join(lines))
        async with httpx.AsyncClient() as http:
            me = await http.get(f"{urls[0]}/bot4242:CLI-token-abcdef/getMe")
            assert me.json()["result"]["username"] == "cli_demo_bot"
            api = await http.get(f"{urls[2]}/payments/x")
            assert api.status_code == 401
            web_url = re.search(r"web page: +(\S+)", "".join(lines))
            assert web_url is not None and web_url.group(1) == urls[0] + "/"
            page = await http.get(web_url.group(1))
            assert page.headers["content-type"].startswith("text/html")
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0


@pytest.mark.slow  # starts the sandbox CLI process
async def test_cli_stand_in_can_require_receipts():
    """``--require-receipts``: the stand-in started by the CLI refuses a payment without a receipt."""
    process = await asyncio.create_subprocess_exec(
        str(BOTFLEET),
        "sandbox",
        "--telegram-port",
        "0",
        "--yookassa-port",
        "0",
        "--require-receipts",
        "--require-tax-system",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not any("Ctrl-C" in line for line in lines):
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the command exited early"
            lines.append(line.decode())
        assert any("receipts required" in line for line in lines)
        api_url = re.findall(r"http://127\.0\.0\.1:\d+/v3", "".join(lines))[0]
        async with httpx.AsyncClient(auth=("100500", "test_sandbox_secret_key")) as http:
            refused = await http.post(
                f"{api_url}/payments",
                json={
                    "amount": {"value": "10.00", "currency": "RUB"},
                    "confirmation": {"type": "redirect", "return_url": "https://t.me/x"},
                },
                headers={"Idempotence-Key": "k1"},
            )
            rules = await http.get(api_url.replace("/v3", "/sandbox/receipts"))
        assert refused.status_code == 400 and refused.json()["parameter"] == "receipt"
        assert rules.json()["rules"] == {"required": True, "tax_system_required": True}
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0
