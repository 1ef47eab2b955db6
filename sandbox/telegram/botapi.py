"""The Bot API over HTTP: ``/bot<token>/<method>`` and ``/file/bot<token>/<path>``.

Requests are read in every encoding Telegram accepts (query string, urlencoded form, JSON,
multipart with uploads) and answered with Telegram's envelope: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, web

from sandbox.telegram.errors import BotAPIError, bad_request, not_found
from sandbox.telegram.methods import METHODS, CallContext, WebhookControl
from sandbox.telegram.models import BotAccount
from sandbox.telegram.params import Params, Upload
from sandbox.telegram.world import TelegramWorld, mask_token

logger = logging.getLogger(__name__)


async def read_multipart(
    reader: AsyncIterable[MultipartReader | BodyPartReader | None],
) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Read a multipart body into plain fields and uploads, without blocking file I/O.

    ``reader`` is a server request's :class:`MultipartReader` or a client response's wrapper of one
    (``MultipartReader.from_response``): both iterate over the parts."""
    values: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    async for part in reader:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.filename is not None:
            data = await part.read(decode=True)
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            uploads[part.name] = Upload(bytes(data), part.filename, content_type)
        else:
            values[part.name] = await part.text()
    return values, uploads


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode a JSON or urlencoded body into parameters."""
    if not body.strip():
        return {}
    if content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(decoded, dict):
            raise bad_request("JSON object expected")
        return decoded
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {}


async def read_params(request: web.Request) -> Params:
    """Parameters of a Bot API call from the query string and the body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.can_read_body:
        if request.content_type.startswith("multipart/"):
            fields, uploads = await read_multipart(await request.multipart())
            values.update(fields)
        else:
            values.update(parse_body(request.content_type, await request.read()))
    return Params(values, uploads)


def envelope(result: Any) -> web.Response:
    """A successful Bot API answer."""
    return web.json_response({"ok": True, "result": result})


def error_response(error: BotAPIError) -> web.Response:
    """A failed Bot API answer with the HTTP status Telegram uses."""
    return web.json_response(error.to_payload(), status=error.error_code)


class BotApi:
    """Dispatches Bot API calls to method handlers for a :class:`TelegramWorld`."""

    def __init__(
        self, world: TelegramWorld, *, webhooks: WebhookControl, closing: asyncio.Event
    ) -> None:
        self.world = world
        self.webhooks = webhooks
        self.closing = closing

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes of the Bot API."""
        return [
            web.route("*", "/bot{token}/{method}", self.handle_method),
            web.get("/file/bot{token}/{path:.+}", self.handle_file),
        ]

    async def execute(self, bot: BotAccount, method: str, params: Params) -> Any:
        """Run one method for ``bot``; raises :class:`BotAPIError` like the HTTP path answers."""
        handler = METHODS.get(method.lower())
        if handler is None:
            raise not_found()
        fault = self.world.take_fault(bot, method)
        if fault is not None:
            raise fault
        ctx = CallContext(world=self.world, bot=bot, webhooks=self.webhooks, closing=self.closing)
        return await handler(ctx, params)

    async def handle_method(self, request: web.Request) -> web.Response:
        """``/bot<token>/<method>`` for GET and POST."""
        token = request.match_info["token"]
        method = request.match_info["method"]
        try:
            bot = self.world.bot_by_token(token)
            params = await read_params(request)
            result = await self.execute(bot, method, params)
        except BotAPIError as error:
            if error.error_code >= 500 or error.error_code == 401:
                logger.info(
                    "bot api %s token=%s -> %s", method, mask_token(token), error.error_code
                )
            return error_response(error)
        except Exception:
            logger.exception("bot api %s token=%s crashed", method, mask_token(token))
            return error_response(BotAPIError(500, "Internal Server Error"))
        return envelope(result)

    async def handle_file(self, request: web.Request) -> web.StreamResponse:
        """``/file/bot<token>/<file_path>`` downloads, as with the real file server."""
        try:
            bot = self.world.bot_by_token(request.match_info["token"])
        except BotAPIError as error:
            return error_response(error)
        path = request.match_info["path"]
        stored = next((f for f in self.world.files.values() if f.file_path == path), None)
        if stored is None or not stored.usable_by(bot.id):
            return error_response(not_found())
        return web.Response(body=stored.data, content_type=stored.mime_type)
