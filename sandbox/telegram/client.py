"""A small async client of the control API, for tests that act as Telegram users.

Example::

    async with TelegramSandbox(tg.base_url) as sandbox:
        await sandbox.register_bot("123456:TEST-token-abc", username="shop_bot")
        ann = await sandbox.user(bot_id=123456, first_name="Ann")
        reply = await ann.ask("/start")          # send, then wait until the bot has answered
        await ann.click("Book")                   # press an inline button by its text
        answer = await ann.wait_answer()          # the bot's newest message once it settles
        assert "booked" in answer["text"]

The client talks HTTP only, so it works against an emulator in the test process or one started
with ``botfleet sandbox``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import httpx


class SandboxError(Exception):
    """The control API refused a request; ``status`` and ``message`` say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class TelegramSandbox:
    """Client of the emulator's control API (``/sandbox/...``)."""

    def __init__(
        self, base_url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self._http = client or httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> TelegramSandbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_client:
            await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the control API; raises :class:`SandboxError` on a 4xx/5xx answer."""
        response = await self._http.request(method, f"{self.base_url}/sandbox{path}", **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise SandboxError(response.status_code, message)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    async def register_bot(
        self, token: str, *, username: str, first_name: str | None = None
    ) -> dict[str, Any]:
        """Register a bot (idempotent for the same token)."""
        body = {"token": token, "username": username, "first_name": first_name}
        return await self.request("POST", "/bots", json=body)

    async def remove_bot(self, bot_id: int) -> None:
        """Forget a bot, as if its token were revoked."""
        await self.request("DELETE", f"/bots/{bot_id}")

    async def create_user(self, first_name: str = "Test", **fields: Any) -> dict[str, Any]:
        """Create a user (``last_name``, ``username``, ``language_code``, ``phone_number``, ``id``)."""
        return await self.request("POST", "/users", json={"first_name": first_name, **fields})

    async def user(self, *, bot_id: int, first_name: str = "Test", **fields: Any) -> TelegramUser:
        """Create a user and return a handle acting as them towards ``bot_id``."""
        created = await self.create_user(first_name, **fields)
        return TelegramUser(self, bot_id=bot_id, user_id=created["id"])

    def as_user(self, *, bot_id: int, user_id: int) -> TelegramUser:
        """A handle for an existing user's chat with a bot."""
        return TelegramUser(self, bot_id=bot_id, user_id=user_id)

    async def state(self) -> dict[str, Any]:
        """Bots, users, chats and rate limits at once."""
        return await self.request("GET", "/state")

    async def bot(self, bot_id: int) -> dict[str, Any]:
        """One bot: webhook, pending updates, commands, menu buttons, chats."""
        return await self.request("GET", f"/bots/{bot_id}")

    async def set_rate_limits(self, **limits: Any) -> dict[str, Any]:
        """Replace flood limits; e.g. ``enabled=False`` or ``per_chat_burst=1``."""
        return await self.request("PUT", "/rate-limits", json=limits)

    async def inject_fault(
        self,
        bot_id: int,
        *,
        method: str,
        error_code: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Make the bot's next ``count`` calls of ``method`` (``*``: any) fail."""
        body: dict[str, Any] = {"method": method, "error_code": error_code, "count": count}
        if description is not None:
            body["description"] = description
        if retry_after is not None:
            body["retry_after"] = retry_after
        await self.request("POST", f"/bots/{bot_id}/faults", json=body)

    async def deliver_again(self, *, bot_id: int, update_id: int) -> int:
        """Deliver a recent update to the bot once more (a repeat); the new update id."""
        result = await self.request("POST", f"/bots/{bot_id}/updates/{update_id}/again")
        return int(result["update_id"])

    async def download(self, file_id: str) -> bytes:
        """The bytes of a file a bot sent."""
        response = await self._http.get(f"{self.base_url}/sandbox/files/{file_id}")
        if response.status_code != 200:
            raise SandboxError(response.status_code, response.text)
        return response.content


class TelegramUser:
    """One user's chat with one bot, driven like a person with the Telegram app would."""

    def __init__(self, sandbox: TelegramSandbox, *, bot_id: int, user_id: int) -> None:
        self.sandbox = sandbox
        self.bot_id = bot_id
        self.id = user_id
        self.mark = 0  # chat version right after this user's last action

    @property
    def _path(self) -> str:
        return f"/chats/{self.bot_id}/{self.id}"

    def _marked(self, result: dict[str, Any]) -> dict[str, Any]:
        self.mark = int(result.get("version", self.mark))
        return result

    async def send(self, text: str, *, reply_to: int | None = None) -> dict[str, Any]:
        """Send a text or ``/command``; returns the user's message as shown in the chat."""
        body = {"text": text, "reply_to_message_id": reply_to}
        result = self._marked(
            await self.sandbox.request("POST", self._path + "/messages", json=body)
        )
        return result["message"]

    async def send_photo(
        self,
        data: bytes,
        *,
        caption: str | None = None,
        caption_entities: list[dict[str, Any]] | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Send a photo (PNG, JPEG, GIF or WebP bytes, at most 10 MB) with an optional caption;
        the bot gets ``message.photo`` (several sizes) and ``caption``/``caption_entities``."""
        body: dict[str, Any] = {
            "data_base64": base64.b64encode(data).decode(),
            "caption": caption,
            "caption_entities": caption_entities,
            "filename": filename,
        }
        result = self._marked(await self.sandbox.request("POST", self._path + "/photo", json=body))
        return result["message"]

    async def share_contact(self, phone_number: str | None = None) -> dict[str, Any]:
        """Share the user's contact (``message.contact``)."""
        body = {"phone_number": phone_number}
        result = self._marked(
            await self.sandbox.request("POST", self._path + "/contact", json=body)
        )
        return result["message"]

    async def press(self, text: str) -> dict[str, Any]:
        """Tap a reply-keyboard button (sends its text, or the contact if it requests one)."""
        result = self._marked(
            await self.sandbox.request("POST", self._path + "/press", json={"text": text})
        )
        return result["message"]

    async def click(
        self,
        text: str | None = None,
        *,
        data: str | None = None,
        message_id: int | None = None,
        forged: bool = False,
    ) -> str:
        """Tap an inline button by its text or callback data; returns the callback query id.
        ``forged`` sends ``data`` even if no button carries it (a modified client)."""
        body = {"text": text, "data": data, "message_id": message_id, "forged": forged}
        result = self._marked(
            await self.sandbox.request("POST", self._path + "/callback", json=body)
        )
        return result["callback_query_id"]

    async def callback_answer(self, query_id: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the bot's ``answerCallbackQuery``; raises ``TimeoutError`` if none comes."""
        result = await self.sandbox.request(
            "GET", f"/callbacks/{query_id}", params={"wait": timeout}
        )
        if not result["answered"]:
            raise TimeoutError(f"the bot did not answer callback query {query_id}")
        return result["answer"]

    async def pay(
        self,
        message_id: int | None = None,
        *,
        outcome: str = "success",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Pay an invoice of the chat (the newest open one by default) as the user would: the bot
        gets a ``pre_checkout_query`` and, once it approves, ``successful_payment``. ``outcome``
        ``"declined"`` has the card declined after the approval, ``"cancel"`` closes the form.
        Returns ``{"status": "paid" | "refused" | "timeout" | "declined" | "cancelled", ...}``."""
        body: dict[str, Any] = {"message_id": message_id, "outcome": outcome}
        if timeout is not None:
            body["timeout"] = timeout
        return self._marked(await self.sandbox.request("POST", self._path + "/pay", json=body))

    async def open_invoice_link(self, link: str) -> dict[str, Any]:
        """Open a ``createInvoiceLink`` link: the invoice shows in the chat (pay it with ``pay``)."""
        result = self._marked(
            await self.sandbox.request("POST", self._path + "/invoice-link", json={"link": link})
        )
        return result["message"]

    async def block(self) -> None:
        """Block the bot: its sends now fail with 403."""
        self._marked(await self.sandbox.request("POST", self._path + "/block"))

    async def unblock(self) -> None:
        """Unblock the bot."""
        self._marked(await self.sandbox.request("POST", self._path + "/unblock"))

    async def chat(self) -> dict[str, Any]:
        """The chat as the user sees it: messages, reply keyboard, callback answers, version."""
        return await self.sandbox.request("GET", self._path)

    async def messages(self) -> list[dict[str, Any]]:
        """All visible messages, oldest first."""
        return (await self.chat())["messages"]

    async def last_message(self, *, from_bot: bool = True) -> dict[str, Any] | None:
        """The newest message from the bot (or from anyone with ``from_bot=False``)."""
        for message in reversed(await self.messages()):
            if not from_bot or message["from"] == "bot":
                return message
        return None

    async def reply_keyboard(self) -> list[str]:
        """Labels of the reply keyboard currently shown (empty when none)."""
        keyboard = (await self.chat())["reply_keyboard"] or {}
        rows = keyboard.get("keyboard") or []
        return [b if isinstance(b, str) else b["text"] for row in rows for b in row]

    async def wait_for_change(self, after: int | None = None, *, timeout: float = 5.0) -> int:
        """Wait until the chat changes past version ``after`` (default: the last action)."""
        version = self.mark if after is None else after
        result = await self.sandbox.request(
            "GET", self._path + "/wait", params={"version": version, "timeout": timeout}
        )
        if not result["changed"]:
            raise TimeoutError(f"chat {self.bot_id}/{self.id} did not change within {timeout}s")
        return int(result["version"])

    async def wait_for_bot_message(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait (long-polling the chat) until the bot's newest message satisfies ``predicate``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            chat = await self.chat()
            bot_messages = [m for m in chat["messages"] if m["from"] == "bot"]
            if bot_messages and predicate(bot_messages[-1]):
                return bot_messages[-1]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("the bot did not answer in time")
            await self.sandbox.request(
                "GET",
                self._path + "/wait",
                params={"version": chat["version"], "timeout": min(remaining, 5.0)},
            )

    async def wait_answer(self, *, timeout: float = 5.0, settle: float = 0.05) -> dict[str, Any]:
        """Wait until the bot reacted to the last action and went quiet; its newest message.

        "Quiet" means no change for ``settle`` seconds, so an answer followed at once by an edit is
        seen whole.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        version = await self.wait_for_change(timeout=timeout)
        while True:
            remaining = deadline - loop.time()
            window = min(settle, max(0.0, remaining))
            result = await self.sandbox.request(
                "GET", self._path + "/wait", params={"version": version, "timeout": window}
            )
            if not result["changed"] or remaining <= 0:
                break
            version = int(result["version"])
        self.mark = version
        message = await self.last_message()
        if message is None:
            raise TimeoutError("the chat changed but holds no bot message")
        return message

    async def ask(self, text: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """Send ``text`` and return the bot's answer once it settles."""
        await self.send(text)
        return await self.wait_answer(timeout=timeout)

    async def download(self, message: dict[str, Any]) -> bytes:
        """The bytes of the document or photo in a message view."""
        attachment = message.get("document") or message.get("photo")
        if not attachment:
            raise ValueError("the message has no document or photo")
        return await self.sandbox.download(attachment["file_id"])
