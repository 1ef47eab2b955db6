"""The Bot API over plain HTTP: encodings, envelopes, errors, long polling, files, commands."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.testing import bot_id_of, new_bot_token


@pytest.fixture
async def api(telegram_emulator: TelegramEmulator, telegram_sandbox: TelegramSandbox):
    """(http client, bot base URL, bot id, user handle with a started chat)."""
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username=f"raw{bot_id_of(token)}_bot")
    user = await telegram_sandbox.user(bot_id=bot_id_of(token), first_name="Ann", username="ann_x")
    await user.send("/start")
    async with httpx.AsyncClient(base_url=f"{telegram_emulator.base_url}/bot{token}/") as http:
        yield http, bot_id_of(token), user


async def test_unknown_token_is_401_like_telegram(telegram_emulator):
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{telegram_emulator.base_url}/bot{new_bot_token()}/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_is_404(api):
    http, _, _ = api
    response = await http.post("noSuchMethod")
    assert response.status_code == 404
    assert response.json()["description"] == "Not Found"


async def test_every_encoding_is_accepted(api):
    http, _, user = api
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    sent = [
        await http.get("sendMessage", params={"chat_id": user.id, "text": "query"}),
        await http.post("sendMessage", data={"chat_id": str(user.id), "text": "form"}),
        await http.post(
            "sendMessage", json={"chat_id": user.id, "text": "json", "reply_markup": markup}
        ),
        await http.post(
            "sendMessage",
            files={"x": ("a.txt", b"1")},
            data={"chat_id": str(user.id), "text": "multipart", "reply_markup": json.dumps(markup)},
        ),
    ]
    assert [r.json()["result"]["text"] for r in sent] == ["query", "form", "json", "multipart"]
    assert sent[2].json()["result"]["reply_markup"] == markup
    assert [r.json()["result"]["message_id"] for r in sent] == [2, 3, 4, 5]
    by_username = await http.post("sendMessage", json={"chat_id": "@ann_x", "text": "hi"})
    assert by_username.json()["result"]["chat"]["id"] == user.id


async def test_bad_requests_are_worded_like_telegram(api):
    http, _, user = api
    cases = {
        "malformed json": (
            await http.post(
                "sendMessage", content=b"{oops", headers={"Content-Type": "application/json"}
            ),
            "Bad Request: can't parse JSON object",
        ),
        "no text": (
            await http.post("sendMessage", json={"chat_id": user.id}),
            "Bad Request: message text is empty",
        ),
        "no chat": (
            await http.post("sendMessage", json={"text": "x"}),
            "Bad Request: chat_id is empty",
        ),
        "unknown chat": (
            await http.post("sendMessage", json={"chat_id": 1, "text": "x"}),
            "Bad Request: chat not found",
        ),
        "bad html": (
            await http.post(
                "sendMessage", json={"chat_id": user.id, "text": "a<br>b", "parse_mode": "HTML"}
            ),
            'Bad Request: can\'t parse entities: Unsupported start tag "br" at byte offset 1',
        ),
        "bad markup": (
            await http.post(
                "sendMessage", data={"chat_id": user.id, "text": "x", "reply_markup": "{nope"}
            ),
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
        "long callback data": (
            await http.post(
                "sendMessage",
                json={
                    "chat_id": user.id,
                    "text": "x",
                    "reply_markup": {
                        "inline_keyboard": [[{"text": "A", "callback_data": "x" * 65}]]
                    },
                },
            ),
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    }
    for name, (response, description) in cases.items():
        assert response.status_code == 400, name
        assert response.json() == {"ok": False, "error_code": 400, "description": description}, name


async def test_user_who_never_started_the_bot_is_forbidden(api, telegram_sandbox):
    http, _, _ = api
    stranger = await telegram_sandbox.create_user("Stranger")
    response = await http.post("sendMessage", json={"chat_id": stranger["id"], "text": "hi"})
    assert response.status_code == 403
    assert (
        response.json()["description"] == "Forbidden: bot can't initiate conversation with a user"
    )


async def test_edit_and_delete_errors(api):
    http, _, user = api
    sent = (await http.post("sendMessage", json={"chat_id": user.id, "text": "v1"})).json()
    message_id = sent["result"]["message_id"]
    edit = {"chat_id": user.id, "message_id": message_id, "text": "v2"}
    assert (await http.post("editMessageText", json=edit)).json()["result"]["edit_date"]
    same = await http.post("editMessageText", json=edit)
    assert same.status_code == 400
    assert same.json()["description"].startswith("Bad Request: message is not modified:")
    missing = await http.post("editMessageText", json={**edit, "message_id": 999})
    assert missing.json()["description"] == "Bad Request: message to edit not found"
    users_message = await http.post("editMessageText", json={**edit, "message_id": 1})
    assert users_message.json()["description"] == "Bad Request: message can't be edited"
    delete = {"chat_id": user.id, "message_id": message_id}
    assert (await http.post("deleteMessage", json=delete)).json()["result"] is True
    again = await http.post("deleteMessage", json=delete)
    assert again.json()["description"] == "Bad Request: message to delete not found"
    assert [m["message_id"] for m in await user.messages()] == [1]


async def test_long_polling_waits_and_offset_confirms(api, telegram_sandbox):
    http, _, user = api
    first = (await http.post("getUpdates", json={"timeout": 0})).json()["result"]
    assert first[0]["message"]["text"] == "/start"
    assert first[0]["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    offset = first[-1]["update_id"] + 1

    started = time.monotonic()
    empty = await http.post("getUpdates", json={"offset": offset, "timeout": 1})
    assert empty.json()["result"] == []
    assert time.monotonic() - started >= 0.9

    poll = asyncio.create_task(http.post("getUpdates", json={"offset": offset, "timeout": 10}))
    await asyncio.sleep(0.05)
    await user.send("hello")
    started = time.monotonic()
    updates = (await poll).json()["result"]
    assert time.monotonic() - started < 1
    assert [u["message"]["text"] for u in updates] == ["hello"]
    again = await http.post("getUpdates", json={"offset": updates[-1]["update_id"] + 1})
    assert again.json()["result"] == []


async def test_second_poller_terminates_the_first(api):
    http, _, _ = api
    await http.post("getUpdates", json={"offset": -1})
    first = asyncio.create_task(http.post("getUpdates", json={"offset": 10**6, "timeout": 5}))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(http.post("getUpdates", json={"offset": 10**6, "timeout": 0}))
    conflict = await first
    assert conflict.status_code == 409
    assert conflict.json()["description"].startswith("Conflict: terminated by other getUpdates")
    assert (await second).status_code == 200


async def test_rate_limit_answers_429_with_retry_after(api, telegram_sandbox):
    http, _, user = api
    await telegram_sandbox.set_rate_limits(per_chat_per_second=1, per_chat_burst=2)
    statuses = []
    for text in ("1", "2", "3"):
        response = await http.post("sendMessage", json={"chat_id": user.id, "text": text})
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }


async def test_injected_fault(api, telegram_sandbox):
    http, bot_id, user = api
    await telegram_sandbox.inject_fault(bot_id, method="sendMessage", error_code=502, count=1)
    failed = await http.post("sendMessage", json={"chat_id": user.id, "text": "x"})
    assert failed.status_code == 502
    assert (await http.post("sendMessage", json={"chat_id": user.id, "text": "x"})).is_success


async def test_documents_commands_and_chat_info(api, telegram_emulator):
    http, _, user = api
    sent = await http.post(
        "sendDocument",
        data={
            "chat_id": str(user.id),
            "document": "attach://f1",
            "caption": "<i>report</i>",
            "parse_mode": "HTML",
        },
        files={"f1": ("report.pdf", b"%PDF-1.4", "application/pdf")},
    )
    document = sent.json()["result"]["document"]
    assert document["file_name"] == "report.pdf"
    assert sent.json()["result"]["caption_entities"] == [
        {"offset": 0, "length": 6, "type": "italic"}
    ]
    file = (await http.post("getFile", json={"file_id": document["file_id"]})).json()["result"]
    async with httpx.AsyncClient() as raw:
        token = http.base_url.path.split("/bot", 1)[1].rstrip("/")
        url = f"{telegram_emulator.base_url}/file/bot{token}/{file['file_path']}"
        assert (await raw.get(url)).content == b"%PDF-1.4"
    resend = await http.post(
        "sendDocument", json={"chat_id": user.id, "document": document["file_id"]}
    )
    assert resend.json()["result"]["document"]["file_id"] == document["file_id"]

    scope = {"type": "chat", "chat_id": user.id}
    commands = [{"command": "book", "description": "Book a slot"}]
    await http.post(
        "setMyCommands", json={"commands": commands, "scope": scope, "language_code": "ru"}
    )
    got = await http.post("getMyCommands", json={"scope": scope, "language_code": "ru"})
    assert got.json()["result"] == commands
    assert (await http.post("getMyCommands", json={"scope": scope})).json()["result"] == []
    bad = await http.post(
        "setMyCommands", json={"commands": [{"command": "Bad Cmd", "description": "x"}]}
    )
    assert bad.json()["description"] == "Bad Request: BOT_COMMAND_INVALID"

    chat = (await http.post("getChat", json={"chat_id": user.id})).json()["result"]
    assert chat["type"] == "private" and chat["first_name"] == "Ann"
    assert (
        await http.post("sendChatAction", json={"chat_id": user.id, "action": "typing"})
    ).is_success
    assert (await user.chat())["chat_actions"][-1]["action"] == "typing"
