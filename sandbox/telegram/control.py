"""The sandbox control API: act as Telegram users and look inside the emulator (JSON over HTTP).

Every route lives under ``/sandbox``; errors are ``{"error": "<what to fix>"}`` with a 4xx status.
See ``sandbox/README.md`` for the full reference with examples.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from sandbox.telegram.errors import ControlError
from sandbox.telegram.models import Conversation
from sandbox.telegram.ratelimit import RateLimits
from sandbox.telegram.render import conversation_view, message_to_view
from sandbox.telegram.world import USER_FIELDS, TelegramWorld

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_WAIT = 60.0


@web.middleware
async def control_errors(request: web.Request, handler: RouteHandler) -> web.StreamResponse:
    """Turn :class:`ControlError` into ``{"error": ...}`` responses."""
    try:
        return await handler(request)
    except ControlError as error:
        return web.json_response({"error": error.message}, status=error.status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer") from None


def _float(value: Any, name: str, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be a number") from None


def _bot_json(world: TelegramWorld, bot_id: int) -> dict[str, Any]:
    bot = world.bot(bot_id)
    return {
        "id": bot.id,
        "username": bot.username,
        "first_name": bot.first_name,
        "webhook": None
        if bot.webhook is None
        else {
            "url": bot.webhook.url,
            "last_error_date": bot.webhook.last_error_date,
            "last_error_message": bot.webhook.last_error_message,
        },
        "pending_update_count": len(bot.updates),
        "commands": [
            {"scope": json.loads(scope), "language_code": lang, "commands": commands}
            for (scope, lang), commands in bot.commands.items()
        ],
        "menu_buttons": {str(k): v for k, v in bot.menu_buttons.items()},
        "chats": [u for (b, u) in world.conversations if b == bot.id],
    }


def _chat_summary(conv: Conversation) -> dict[str, Any]:
    visible = conv.visible()
    return {
        "bot_id": conv.bot.id,
        "user_id": conv.user.id,
        "version": conv.signal.version,
        "blocked": conv.blocked,
        "message_count": len(visible),
        "unread_count": conv.unread(),
        "last_message_id": visible[-1].message_id if visible else None,
    }


class ControlApi:
    """Routes of the control API over one :class:`TelegramWorld`."""

    def __init__(self, world: TelegramWorld) -> None:
        self.world = world

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes under ``/sandbox``."""
        chat = "/sandbox/chats/{bot_id}/{user_id}"
        return [
            web.get("/sandbox/health", self.health),
            web.get("/sandbox/state", self.state),
            web.get("/sandbox/wait", self.wait_world),
            web.get("/sandbox/bots", self.list_bots),
            web.post("/sandbox/bots", self.create_bot),
            web.get("/sandbox/bots/{bot_id}", self.get_bot),
            web.delete("/sandbox/bots/{bot_id}", self.delete_bot),
            web.post("/sandbox/bots/{bot_id}/faults", self.add_fault),
            web.get("/sandbox/users", self.list_users),
            web.post("/sandbox/users", self.create_user),
            web.get("/sandbox/users/{user_id}", self.get_user),
            web.patch("/sandbox/users/{user_id}", self.update_user),
            web.get("/sandbox/chats", self.list_chats),
            web.get(chat, self.get_chat),
            web.get(chat + "/wait", self.wait_chat),
            web.post(chat + "/messages", self.send_text),
            web.post(chat + "/photo", self.send_photo),
            web.post(chat + "/contact", self.share_contact),
            web.post(chat + "/press", self.press_reply_button),
            web.post(chat + "/callback", self.press_inline_button),
            web.post(chat + "/block", self.block),
            web.post(chat + "/unblock", self.unblock),
            web.post(chat + "/read", self.mark_read),
            web.post(chat + "/pay", self.pay),
            web.post(chat + "/invoice-link", self.open_invoice_link),
            web.post("/sandbox/bots/{bot_id}/updates/{update_id}/again", self.deliver_again),
            web.get("/sandbox/callbacks/{query_id}", self.get_callback),
            web.get("/sandbox/files/{file_id}", self.get_file),
            web.get("/sandbox/rate-limits", self.get_rate_limits),
            web.put("/sandbox/rate-limits", self.set_rate_limits),
        ]

    def files_url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}/sandbox/files"

    def _conv(self, request: web.Request, *, create: bool = True) -> Conversation:
        bot = self.world.bot(_int(request.match_info["bot_id"], "bot_id"))
        user = self.world.user(_int(request.match_info["user_id"], "user_id"))
        if create:
            return self.world.conversation(bot, user)
        return self.world.conversations.get((bot.id, user.id)) or Conversation(bot=bot, user=user)

    def _message(self, request: web.Request, conv: Conversation, message_id: int) -> web.Response:
        view = message_to_view(conv.messages[message_id], files_url=self.files_url(request))
        return web.json_response({"message": view, "version": conv.signal.version})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def state(self, request: web.Request) -> web.Response:
        """Everything at once: bots, users, chats (what a dashboard polls)."""
        world = self.world
        return web.json_response(
            {
                "version": world.changes.version,
                "bots": [_bot_json(world, b) for b in world.bots],
                "users": [
                    u.to_user() | {"phone_number": u.phone_number} for u in world.users.values()
                ],
                "chats": [_chat_summary(c) for c in world.conversations.values()],
                "rate_limits": world.limiter.limits.to_dict(),
            }
        )

    async def wait_world(self, request: web.Request) -> web.Response:
        """Long-poll until anything changes (a bot, a user, any chat) past ``version``."""
        changes = self.world.changes
        version = _int(request.query.get("version", changes.version), "version")
        timeout = min(_MAX_WAIT, _float(request.query.get("timeout"), "timeout", 10.0))
        changed = await changes.wait_past(version, timeout)
        return web.json_response({"changed": changed, "version": changes.version})

    async def list_bots(self, request: web.Request) -> web.Response:
        return web.json_response({"bots": [_bot_json(self.world, b) for b in self.world.bots]})

    async def create_bot(self, request: web.Request) -> web.Response:
        body = await _body(request)
        idle_reply = body.get("idle_reply")
        if idle_reply is not None and not isinstance(idle_reply, dict):
            raise ControlError(400, 'idle_reply must be an object: {"en": "...", "ru": "..."}')
        bot = self.world.register_bot(
            token=str(body.get("token") or ""),
            username=str(body.get("username") or ""),
            first_name=body.get("first_name"),
            idle_reply=idle_reply,
        )
        return web.json_response(_bot_json(self.world, bot.id), status=201)

    async def get_bot(self, request: web.Request) -> web.Response:
        return web.json_response(
            _bot_json(self.world, _int(request.match_info["bot_id"], "bot_id"))
        )

    async def delete_bot(self, request: web.Request) -> web.Response:
        self.world.remove_bot(_int(request.match_info["bot_id"], "bot_id"))
        return web.json_response({"deleted": True})

    async def add_fault(self, request: web.Request) -> web.Response:
        """Queue errors for the bot's next calls of a method (``*`` for any)."""
        bot = self.world.bot(_int(request.match_info["bot_id"], "bot_id"))
        body = await _body(request)
        method = str(body.get("method") or "")
        if not method:
            raise ControlError(400, "method is required ('*' matches every method)")
        error_code = _int(body.get("error_code", 500), "error_code")
        retry_after = body.get("retry_after")
        if error_code == 429 and retry_after is None:
            retry_after = 1
        default = (
            f"Too Many Requests: retry after {retry_after}"
            if error_code == 429
            else ("Internal Server Error")
        )
        self.world.inject_fault(
            bot,
            method=method,
            error_code=error_code,
            description=str(body.get("description") or default),
            retry_after=None if retry_after is None else _int(retry_after, "retry_after"),
            count=_int(body.get("count", 1), "count"),
        )
        return web.json_response({"queued": True}, status=201)

    async def list_users(self, request: web.Request) -> web.Response:
        users = [u.to_user() | {"phone_number": u.phone_number} for u in self.world.users.values()]
        return web.json_response({"users": users})

    async def create_user(self, request: web.Request) -> web.Response:
        body = await _body(request)
        user = self.world.create_user(
            first_name=str(body.get("first_name") or ""),
            last_name=body.get("last_name"),
            username=body.get("username"),
            language_code=body.get("language_code", "en"),
            phone_number=body.get("phone_number"),
            user_id=None if body.get("id") is None else _int(body["id"], "id"),
        )
        return web.json_response(user.to_user() | {"phone_number": user.phone_number}, status=201)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.user(_int(request.match_info["user_id"], "user_id"))
        return web.json_response(user.to_user() | {"phone_number": user.phone_number})

    async def update_user(self, request: web.Request) -> web.Response:
        """Change a user's profile: bots see it in the next update (``language_code`` above all)."""
        user = self.world.user(_int(request.match_info["user_id"], "user_id"))
        body = await _body(request)
        unknown = set(body) - set(USER_FIELDS)
        if unknown:
            raise ControlError(
                400, f"unknown fields {sorted(unknown)}; allowed: {list(USER_FIELDS)}"
            )
        self.world.update_user(user, **body)
        return web.json_response(user.to_user() | {"phone_number": user.phone_number})

    async def mark_read(self, request: web.Request) -> web.Response:
        """The user has seen the chat up to ``message_id`` (default: its newest message)."""
        conv = self._conv(request)
        body = await _body(request)
        raw = body.get("message_id")
        message_id = conv.next_message_id - 1 if raw is None else _int(raw, "message_id")
        self.world.mark_read(conv, message_id)
        return web.json_response({"read_up_to": conv.read_up_to, "version": conv.signal.version})

    async def list_chats(self, request: web.Request) -> web.Response:
        chats = [_chat_summary(c) for c in self.world.conversations.values()]
        return web.json_response({"chats": chats})

    async def get_chat(self, request: web.Request) -> web.Response:
        conv = self._conv(request, create=False)
        return web.json_response(conversation_view(conv, files_url=self.files_url(request)))

    async def wait_chat(self, request: web.Request) -> web.Response:
        """Long-poll until the chat's version exceeds ``version`` or ``timeout`` passes."""
        conv = self._conv(request)
        version = _int(request.query.get("version", conv.signal.version), "version")
        timeout = min(_MAX_WAIT, _float(request.query.get("timeout"), "timeout", 10.0))
        changed = await conv.signal.wait_past(version, timeout)
        return web.json_response({"changed": changed, "version": conv.signal.version})

    async def send_text(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        body = await _body(request)
        reply_to = body.get("reply_to_message_id")
        msg = self.world.user_sends_text(
            conv,
            str(body.get("text") or ""),
            reply_to_message_id=None if reply_to is None else _int(reply_to, "reply_to_message_id"),
        )
        return self._message(request, conv, msg.message_id)

    async def send_photo(self, request: web.Request) -> web.Response:
        """The user sends a photo: ``{"data_base64", "caption"?, "caption_entities"?,
        "filename"?}`` (a PNG, JPEG, GIF or WebP of at most 10 MB)."""
        conv = self._conv(request)
        body = await _body(request)
        try:
            data = base64.b64decode(str(body.get("data_base64") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise ControlError(400, "data_base64 must be the photo's bytes in base64") from None
        if not data:
            raise ControlError(400, "data_base64 is required: the photo's bytes in base64")
        caption = body.get("caption")
        if caption is not None and not isinstance(caption, str):
            raise ControlError(400, "caption must be a string")
        filename = body.get("filename")
        msg = self.world.user_sends_photo(
            conv,
            data,
            caption=caption,
            caption_entities=body.get("caption_entities"),
            filename=None if filename is None else str(filename),
        )
        return self._message(request, conv, msg.message_id)

    async def share_contact(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        body = await _body(request)
        msg = self.world.user_shares_contact(conv, phone_number=body.get("phone_number"))
        return self._message(request, conv, msg.message_id)

    async def press_reply_button(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        body = await _body(request)
        msg = self.world.user_presses_reply_button(conv, str(body.get("text") or ""))
        return self._message(request, conv, msg.message_id)

    async def press_inline_button(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        body = await _body(request)
        message_id = body.get("message_id")
        record = self.world.user_presses_inline_button(
            conv,
            message_id=None if message_id is None else _int(message_id, "message_id"),
            data=body.get("data"),
            text=body.get("text"),
            forged=bool(body.get("forged")),
        )
        return web.json_response(
            {
                "callback_query_id": record.id,
                "message_id": record.message_id,
                "data": record.data,
                "version": conv.signal.version,
            }
        )

    async def pay(self, request: web.Request) -> web.Response:
        """The user pays an invoice: ``{"message_id"?, "outcome"?: "success" | "declined" |
        "cancel", "timeout"?}``; answers once the payment succeeded or failed."""
        conv = self._conv(request)
        body = await _body(request)
        message_id = body.get("message_id")
        timeout = body.get("timeout")
        result = await self.world.payments.pay(
            conv,
            message_id=None if message_id is None else _int(message_id, "message_id"),
            outcome=str(body.get("outcome") or "success"),
            timeout=None if timeout is None else _float(timeout, "timeout", 10.0),
        )
        return web.json_response({**result, "version": conv.signal.version})

    async def open_invoice_link(self, request: web.Request) -> web.Response:
        """The user opens a ``createInvoiceLink`` link: ``{"link": "https://t.me/$..."}``."""
        conv = self._conv(request)
        body = await _body(request)
        msg = self.world.payments.open_link(conv, str(body.get("link") or ""))
        return self._message(request, conv, msg.message_id)

    async def deliver_again(self, request: web.Request) -> web.Response:
        bot = self.world.bot(_int(request.match_info["bot_id"], "bot_id"))
        again = self.world.deliver_again(bot, _int(request.match_info["update_id"], "update_id"))
        return web.json_response({"update_id": again})

    async def block(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        self.world.set_blocked(conv, blocked=True)
        return web.json_response({"blocked": True, "version": conv.signal.version})

    async def unblock(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        self.world.set_blocked(conv, blocked=False)
        return web.json_response({"blocked": False, "version": conv.signal.version})

    async def get_callback(self, request: web.Request) -> web.Response:
        """A button press and the bot's answer; ``?wait=<s>`` waits for the answer."""
        record = self.world.callbacks.get(request.match_info["query_id"])
        if record is None:
            raise ControlError(404, "no such callback query")
        wait = min(_MAX_WAIT, _float(request.query.get("wait"), "wait", 0.0))
        conv = self.world.conversations.get((record.bot_id, record.user_id))
        if not record.answered and wait > 0 and conv is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while not record.answered and loop.time() < deadline:
                await conv.signal.wait_past(conv.signal.version, deadline - loop.time())
        return web.json_response(
            {
                "callback_query_id": record.id,
                "message_id": record.message_id,
                "data": record.data,
                "answered": record.answered,
                "answer": record.answer or None,
            }
        )

    async def get_file(self, request: web.Request) -> web.Response:
        stored = self.world.find_file(request.match_info["file_id"])
        if stored is None:
            raise ControlError(404, "no such file")
        return web.Response(
            body=stored.data,
            content_type=stored.mime_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.file_name)}"
            },
        )

    async def get_rate_limits(self, request: web.Request) -> web.Response:
        return web.json_response(self.world.limiter.limits.to_dict())

    async def set_rate_limits(self, request: web.Request) -> web.Response:
        """Replace flood limits; omitted fields keep Telegram-like defaults."""
        body = await _body(request)
        allowed = set(RateLimits().to_dict())
        unknown = set(body) - allowed
        if unknown:
            raise ControlError(400, f"unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        try:
            limits = RateLimits(**body)
        except TypeError as exc:
            raise ControlError(400, str(exc)) from None
        self.world.limiter.configure(limits)
        return web.json_response(limits.to_dict())
