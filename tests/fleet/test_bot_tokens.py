"""The one getMe checker (fleet/bot_tokens.py) that the sales bot and the deploy worker share: a token
is malformed, invalid (permanent) or Telegram is unreachable (may pass), the same way for both callers.

Real answers come from the Telegram emulator; the failures it cannot give (5xx, 429, a network error,
a foreign bot) come through httpx's transport, the checker's injected seam."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fleet.bot_tokens import BotIdentity, BotTokenChecker
from fleet.errors import BotTokenRejected
from sandbox.telegram import TelegramEmulator
from sandbox.testing import new_bot_token, telegram_emulator  # noqa: F401

API = "http://telegram.test"


def _checker(
    handler: Callable[[httpx.Request], httpx.Response], timeout: float = 10.0
) -> BotTokenChecker:
    return BotTokenChecker(api_base=API, transport=httpx.MockTransport(handler), timeout=timeout)


async def _reason(checker: BotTokenChecker, token: str) -> tuple[str, str]:
    try:
        await checker.get_me(token)
    except BotTokenRejected as exc:
        return exc.reason, str(exc)
    finally:
        await checker.aclose()
    raise AssertionError("the token was accepted")


async def test_a_registered_token_names_its_bot_and_an_unknown_one_is_invalid(
    telegram_emulator: TelegramEmulator,  # noqa: F811
) -> None:
    token = new_bot_token()
    telegram_emulator.register_bot(token, username="shop_bot", first_name="Shop")
    checker = BotTokenChecker(api_base=telegram_emulator.base_url)
    try:
        identity = await checker.get_me(token)
        assert identity == BotIdentity(
            id=int(token.split(":")[0]), username="shop_bot", first_name="Shop"
        )
        with pytest.raises(BotTokenRejected) as rejected:
            await checker.get_me(new_bot_token())
        assert rejected.value.reason == "invalid"
        assert "rejected the bot token (401" in str(rejected.value)
    finally:
        await checker.aclose()


async def test_a_malformed_token_is_refused_without_asking_telegram() -> None:
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(500)

    reason, message = await _reason(_checker(handler), "123:short")
    assert reason == "malformed" and "is not a bot token" in message
    assert asked == []


OWN = -1  # stands for the token's own bot id in the answers below


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, "invalid"),
        (404, {"ok": False, "error_code": 404, "description": "Not Found"}, "invalid"),
        (400, {"ok": False, "error_code": 401, "description": "Unauthorized"}, "invalid"),
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests"}, "unreachable"),
        (502, None, "unreachable"),
        (200, {"ok": False}, "unreachable"),
        (200, {"ok": True, "result": None}, "unreachable"),
        (200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "X"}}, "invalid"),
        (200, {"ok": True, "result": {"id": OWN, "is_bot": False, "first_name": "X"}}, "invalid"),
    ],
)
async def test_answers_are_classified_the_same_for_every_caller(
    status: int, body: dict[str, Any] | None, reason: str
) -> None:
    token = new_bot_token()
    bot_id = int(token.split(":")[0])

    def handler(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status)
        result = body.get("result")
        if isinstance(result, dict) and result["id"] == OWN:
            return httpx.Response(status, json={**body, "result": {**result, "id": bot_id}})
        return httpx.Response(status, json=body)

    got, message = await _reason(_checker(handler), token)
    assert got == reason
    assert token.split(":")[1] not in message


async def test_a_network_error_is_unreachable_and_names_the_host_not_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = new_bot_token()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    reason, message = await _reason(_checker(handler), token)
    assert reason == "unreachable"
    assert message == "cannot reach the Telegram Bot API at telegram.test: ConnectTimeout"
    assert token not in caplog.text and token not in message


async def test_every_request_is_bounded_by_the_timeout_also_on_a_shared_client() -> None:
    token = new_bot_token()
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        result = {"id": int(token.split(":")[0]), "is_bot": True, "first_name": "B"}
        return httpx.Response(200, json={"ok": True, "result": result})

    own = _checker(handler, timeout=2.5)
    assert (await own.get_me(token)).username == ""
    await own.aclose()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=60) as client:
        shared = BotTokenChecker(api_base=API, client=client, timeout=4.0)
        await shared.get_me(token)
        await shared.aclose()
        assert not client.is_closed  # the caller's client stays the caller's
    assert [t["read"] for t in seen] == [2.5, 4.0]


async def test_a_client_and_a_transport_together_are_refused() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="a client or a transport"):
            BotTokenChecker(client=client, transport=transport)
