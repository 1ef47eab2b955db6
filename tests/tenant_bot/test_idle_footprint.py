"""An idle tenant bot holds only what serving customers needs (issue 20's memory goal: idle RSS within
1.3x a bare aiogram echo bot, ``benchmarks/tenant_bot.py``).

Rare features import their heavy libraries when first used: the XLSX export (``openpyxl``, and
``PIL`` through it), QR codes (``segno``), the payment token's key (``kit.secrets`` and
``cryptography``'s ciphers), an HTTP server for webhook mode or a health port (``aiohttp.web``); public
holidays are computed in a child process (``holidays``). A standalone bot that has started, made the
first pass of every loop and idled has imported none of them, so the saving cannot regress unseen;
the process runtime's fork server preloads each (``FORKSERVER_PRELOAD``) so forked bots share one
copy instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from fleet.settings import FORKSERVER_PRELOAD
from tenant_bot.payments import TokenVault
from tests.support.dw_helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]

# Imported by a bot only when the feature is used; preloaded by the fork server.
DEFERRED = ("openpyxl", "segno", "kit.secrets", "aiohttp.web", "aiogram.webhook.aiohttp_server")
# Never held by an idle bot either: pulled in by the above (redis imports the bare ``cryptography``
# package for its version, not its ciphers), or used only in a child process.
NOT_IDLE = (*DEFERRED, "PIL", "cryptography.hazmat", "cryptography.fernet", "holidays")


def _held(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


async def test_an_idle_bot_has_not_imported_the_rare_features(start_bot) -> None:
    bot = await start_bot()  # registers the bot with the emulator; its env is reused below
    await bot.shutdown()
    env = {**os.environ, **bot.runtime.to_env(), "BOTFLEET_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.idle_probe",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # a fresh interpreter imports aiogram first: generous on a loaded machine (not a timing check)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    modules = set(json.loads(out.decode().splitlines()[-1]))
    # the probe saw a bot that serves: its handlers, templates and booking core are in
    assert {"tenant_bot.handlers.booking", "tenant_bot.booking.service", "jinja2"} <= modules
    assert [name for name in NOT_IDLE if _held(modules, name)] == []


def test_the_fork_server_preloads_what_a_bot_defers() -> None:
    assert [name for name in DEFERRED if name not in FORKSERVER_PRELOAD] == []


async def test_a_bot_taking_payments_makes_the_tokens_key_at_start_up(start_bot, tenant) -> None:
    """Deferred, not moved onto a customer's tap: the hold loop's first pass makes the key when the
    owner takes payments; a bot that takes none never makes it."""
    bot = await start_bot()
    await wait_until(lambda: _first_pass_done(bot, "holds"), timeout=20)
    assert not bot.resources.dispatcher["payments"].vault.ready
    vault = TokenVault(bot.runtime.bot_token.get_secret_value())
    await tenant.core.deposits.update_settings(provider_token=vault.seal("381764678:TEST:key"))
    await bot.shutdown()
    bot = await start_bot()
    await wait_until(lambda: _first_pass_done(bot, "holds"), timeout=20)
    assert bot.resources.dispatcher["payments"].vault.ready


async def _first_pass_done(bot, loop: str) -> bool:
    return any(s.name == loop and s.last_beat is not None for s in bot.resources.supervisor)
