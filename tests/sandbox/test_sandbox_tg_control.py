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


async def test_wait_for_bot_message_waits_for_the_message_asked_for(
    telegram_emulator, telegram_sandbox
):
    from sandbox.testing import make_bot

    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username="ctl_waitmsg_bot")
    user = await telegram_sandbox.user(bot_id=bot_id_of(token))
    await user.send("/start")
    with pytest.raises(TimeoutError):
        await user.wait_for_bot_message(lambda m: True, timeout=0.1)
    waiter = asyncio.create_task(user.wait_for_bot_message(lambda m: m["text"] == "second"))
    bot = make_bot(telegram_emulator, token)
    try:
        await bot.send_message(user.id, "first")
        await asyncio.sleep(0.05)
        assert not waiter.done(), "the first message does not satisfy the predicate"
        await bot.send_message(user.id, "second")
        assert (await asyncio.wait_for(waiter, 5))["text"] == "second"
    finally:
        await bot.session.close()


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


async def test_a_user_changes_language_and_bots_see_it(telegram_emulator, telegram_sandbox):
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username="ctl_lang_bot")
    user = await telegram_sandbox.create_user("Olga")
    assert user["language_code"] == "en"
    url = f"{telegram_emulator.base_url}/sandbox/users/{user['id']}"
    async with httpx.AsyncClient() as http:
        changed = await http.patch(url, json={"language_code": "ru"})
        assert changed.status_code == 200 and changed.json()["language_code"] == "ru"
        for body, fragment in (
            ({"language_code": "Russian!"}, "IETF"),
            ({"first_name": ""}, "first_name"),
            ({"is_bot": True}, "unknown fields"),
        ):
            refused = await http.patch(url, json=body)
            assert refused.status_code == 400 and fragment in refused.json()["error"]
    olga = telegram_sandbox.as_user(bot_id=bot_id_of(token), user_id=user["id"])
    await olga.send("/start")
    bot = telegram_emulator.world.bots[bot_id_of(token)]
    assert bot.updates[-1]["message"]["from"]["language_code"] == "ru"


async def test_unread_counts_the_bots_messages_until_the_user_reads_them(
    telegram_emulator, telegram_sandbox
):
    from sandbox.testing import make_bot

    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username="ctl_unread_bot")
    user = await telegram_sandbox.user(bot_id=bot_id_of(token))
    await user.send("/start")

    async def unread() -> int:
        chats = (await telegram_sandbox.state())["chats"]
        return next(c["unread_count"] for c in chats if c["user_id"] == user.id)

    assert await unread() == 0, "the user's own message is read"
    bot = make_bot(telegram_emulator, token)
    try:
        for text in ("one", "two", "three"):
            await bot.send_message(user.id, text)
    finally:
        await bot.session.close()
    assert await unread() == 3
    read = f"{telegram_emulator.base_url}/sandbox/chats/{bot_id_of(token)}/{user.id}/read"
    async with httpx.AsyncClient() as http:
        assert (await http.post(read, json={"message_id": 3})).json()["read_up_to"] == 3
        assert await unread() == 1
        assert (await http.post(read, json={})).json()["read_up_to"] == 4
    assert await unread() == 0


async def test_a_bot_nobody_runs_answers_with_its_idle_reply(telegram_emulator, telegram_sandbox):
    from sandbox.testing import make_bot

    telegram_emulator.world.config.idle_reply_after = 0.1
    idle = {"en": "Not sold yet.", "ru": "Ещё не продан."}
    token = new_bot_token()
    await telegram_sandbox.request(
        "POST", "/bots", json={"token": token, "username": "idle_demo_bot", "idle_reply": idle}
    )
    ann = await telegram_sandbox.user(bot_id=bot_id_of(token), language_code="ru")
    assert (await ann.ask("/start"))["text"] == "Ещё не продан."
    bob = await telegram_sandbox.user(bot_id=bot_id_of(token), language_code="de")
    assert (await bob.ask("/start"))["text"] == "Not sold yet.", "English for other languages"

    # Once the bot runs (it fetches its updates), the emulator stays out of the chat.
    bot = make_bot(telegram_emulator, token)
    try:
        await bot.get_updates(timeout=0)
        await ann.send("hello")
        updates = await bot.get_updates(timeout=1)
        await asyncio.sleep(0.3)
        texts = [m["text"] for m in await ann.messages()]
        assert texts == ["/start", "Ещё не продан.", "hello"]
        assert updates[-1].message is not None and updates[-1].message.text == "hello"
    finally:
        await bot.session.close()
    # A bot that has run and is down for a moment (a sold bot redeploying) is silent, not "not sold".
    await ann.send("anyone?")
    await asyncio.sleep(0.3)
    assert [m["text"] for m in await ann.messages()][-2:] == ["hello", "anyone?"]
    with pytest.raises(SandboxError, match="idle_reply"):
        await telegram_sandbox.request(
            "POST",
            "/bots",
            json={"token": new_bot_token(), "username": "x_bot", "idle_reply": "hi"},
        )
