"""The emulator's control API: registry, errors, waiting, listings."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sandbox.telegram import SandboxError, TelegramSandbox
from sandbox.testing import bot_id_of, new_bot_token


async def test_registry_validation(telegram_sandbox: TelegramSandbox):
    token = new_bot_token()
    created = await telegram_sandbox.register_bot(token, username="ctl_one_bot")
    assert created["id"] == bot_id_of(token)
    assert (await telegram_sandbox.register_bot(token, username="ctl_one_bot"))["id"] == created[
        "id"
    ]
    for kwargs, status in (
        ({"token": "not-a-token", "username": "x_bot"}, 400),
        ({"token": new_bot_token(), "username": "nobotsuffix"}, 400),
        ({"token": new_bot_token(), "username": "ctl_one_bot"}, 409),
        ({"token": new_bot_token(bot_id_of(token)), "username": "ctl_two_bot"}, 409),
    ):
        with pytest.raises(SandboxError) as error:
            await telegram_sandbox.register_bot(kwargs["token"], username=kwargs["username"])
        assert error.value.status == status
    await telegram_sandbox.remove_bot(created["id"])
    with pytest.raises(SandboxError) as gone:
        await telegram_sandbox.bot(created["id"])
    assert gone.value.status == 404


async def test_bad_bodies_and_unknown_buttons(telegram_emulator, telegram_sandbox):
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username="ctl_btn_bot")
    user = await telegram_sandbox.user(bot_id=bot_id_of(token))
    async with httpx.AsyncClient() as http:
        url = f"{telegram_emulator.base_url}/sandbox/chats/{bot_id_of(token)}/{user.id}/messages"
        malformed = await http.post(url, content=b"{oops")
    assert malformed.status_code == 400
    assert malformed.json() == {"error": "the body must be a JSON object"}
    with pytest.raises(SandboxError, match="text must not be empty"):
        await user.send("")
    with pytest.raises(SandboxError, match="no inline button"):
        await user.click("Nope")
    with pytest.raises(SandboxError, match="shows no reply keyboard"):
        await user.press("Nope")
    with pytest.raises(SandboxError, match="no phone_number"):
        await user.share_contact()


async def test_wait_times_out_then_wakes_on_change(telegram_emulator, telegram_sandbox):
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username="ctl_wait_bot")
    user = await telegram_sandbox.user(bot_id=bot_id_of(token))
    with pytest.raises(TimeoutError):
        await user.wait_for_change(timeout=0.1)
    waiter = asyncio.create_task(user.wait_for_change(timeout=5))
    await asyncio.sleep(0.05)
    await user.send("hi")
    assert await waiter >= 1
    state = await telegram_sandbox.state()
    assert state["chats"][0]["message_count"] == 1
    assert state["bots"][0]["pending_update_count"] == 1
    assert state["rate_limits"]["enabled"] is False


async def test_block_sends_my_chat_member_update(telegram_emulator, telegram_sandbox):
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username="ctl_block_bot")
    user = await telegram_sandbox.user(bot_id=bot_id_of(token))
    await user.send("/start")
    await user.block()
    async with httpx.AsyncClient() as http:
        updates = (await http.get(f"{telegram_emulator.base_url}/bot{token}/getUpdates")).json()
    member = updates["result"][-1]["my_chat_member"]
    assert member["new_chat_member"]["status"] == "kicked"
    assert (await user.chat())["blocked"] is True
