"""Telegram Payments in the emulator: invoices, the pre-checkout question, the payment.

What Telegram does, and so what this does:

- ``sendInvoice`` / ``createInvoiceLink`` check the invoice: title 1-32 characters, description 1-255,
  payload 1-128 bytes, a 3-letter currency, prices with a positive total, ``provider_data`` a JSON
  object. The provider token must be one BotFather gives (``<digits>:TEST:<key>`` or
  ``<digits>:LIVE:<key>``); any other is ``400 Bad Request: PAYMENT_PROVIDER_INVALID``. Telegram Stars
  (``XTR``) take an empty token.
- The user pays (control API ``POST /sandbox/chats/{bot}/{user}/pay``, the web page's Pay button,
  :meth:`~sandbox.telegram.client.TelegramUser.pay`): the bot gets a ``pre_checkout_query`` and must
  answer ``answerPreCheckoutQuery`` within :attr:`EmulatorConfig.pre_checkout_timeout` (10 s, as
  Telegram); no answer in time, or ``ok=false``, and the payment fails for the user with nothing
  charged. An approved payment is charged (or declined by the card, ``outcome="declined"``: nothing
  reaches the bot) and the user's ``successful_payment`` service message goes to the bot.
- The user may also close the payment form (``outcome="cancel"``): the bot hears nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.telegram.errors import ControlError, bad_request
from sandbox.telegram.models import ChatMessage, Conversation
from sandbox.telegram.params import Params
from sandbox.telegram.render import message_to_api

if TYPE_CHECKING:
    from sandbox.telegram.world import TelegramWorld

PROVIDER_TOKEN = re.compile(r"^\d{1,15}:(TEST|LIVE):[A-Za-z0-9_-]{4,}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
OUTCOMES = ("success", "declined", "cancel")


@dataclass
class PreCheckout:
    """One ``pre_checkout_query`` waiting for the bot's answer."""

    id: str
    bot_id: int
    user_id: int
    message_id: int
    created: float = field(default_factory=time.monotonic)
    answer: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def invoice_from_params(params: Params) -> dict[str, Any]:
    """The invoice of a ``sendInvoice``/``createInvoiceLink`` call, checked as Telegram checks it."""
    title = params.str("title") or ""
    description = params.str("description") or ""
    payload = params.str("payload") or ""
    currency = params.str("currency") or ""
    token = params.str("provider_token") or ""
    if not 1 <= len(title) <= 32:
        raise bad_request("INVOICE_TITLE_INVALID" if title else "title is empty")
    if not 1 <= len(description) <= 255:
        raise bad_request("INVOICE_DESCRIPTION_INVALID" if description else "description is empty")
    if not 1 <= len(payload.encode()) <= 128:
        raise bad_request("INVOICE_PAYLOAD_INVALID")
    if not _CURRENCY.match(currency):
        raise bad_request("CURRENCY_INVALID")
    if currency == "XTR" and token:
        raise bad_request("PAYMENT_PROVIDER_INVALID")  # Stars take no provider
    if currency != "XTR" and not PROVIDER_TOKEN.match(token):
        raise bad_request("PAYMENT_PROVIDER_INVALID")
    prices = params.json("prices", what="prices")
    if not isinstance(prices, list) or not prices:
        raise bad_request("can't parse prices JSON object")
    total = 0
    for price in prices:
        if (
            not isinstance(price, dict)
            or not isinstance(price.get("label"), str)
            or not isinstance(price.get("amount"), int)
        ):
            raise bad_request("can't parse prices JSON object")
        total += price["amount"]
    if total <= 0:
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    raw_data = params.str("provider_data")
    provider_data = None
    if raw_data is not None:
        try:
            provider_data = json.loads(raw_data)
        except ValueError:
            raise bad_request("DATA_JSON_INVALID") from None
        if not isinstance(provider_data, dict):
            raise bad_request("DATA_JSON_INVALID")
    return {
        "title": title,
        "description": description,
        "payload": payload,
        "currency": currency,
        "prices": prices,
        "total_amount": total,
        "start_parameter": params.str("start_parameter") or "",
        "provider": token.split(":", 2)[1].lower() if token else "stars",
        "provider_data": provider_data,
        "state": "open",
    }


class PaymentDesk:
    """Pre-checkout queries in flight and invoice links, for one world."""

    def __init__(self, world: TelegramWorld) -> None:
        self.world = world
        self.queries: dict[str, PreCheckout] = {}
        self.links: dict[str, tuple[int, dict[str, Any]]] = {}

    def link(self, bot_id: int, invoice: dict[str, Any]) -> str:
        slug = secrets.token_urlsafe(12)
        self.links[slug] = (bot_id, invoice)
        return f"https://t.me/${slug}"

    def open_link(self, conv: Conversation, link: str) -> ChatMessage:
        """The user opens an invoice link: the app shows the invoice (as a message of the bot)."""
        found = self.links.get(link.rsplit("$", 1)[-1])
        if found is None or found[0] != conv.bot.id:
            raise ControlError(404, "no such invoice link for this bot")
        msg = ChatMessage(
            message_id=conv.new_message_id(),
            from_bot=True,
            date=self.world.now(),
            invoice=dict(found[1]),
        )
        conv.messages[msg.message_id] = msg
        conv.started = True
        self.world.touch(conv)
        return msg

    def answer(self, bot_id: int, params: Params) -> bool:
        """``answerPreCheckoutQuery``."""
        query_id = params.str("pre_checkout_query_id", required=True) or ""
        query = self.queries.get(query_id)
        if query is None or query.bot_id != bot_id or query.answer.done():
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        ok = params.bool("ok")
        error = params.str("error_message")
        if not ok and not error:
            raise bad_request("error_message is required when ok is false")
        query.answer.set_result({"ok": ok, "error_message": error})
        return True

    async def pay(
        self,
        conv: Conversation,
        *,
        message_id: int | None = None,
        outcome: str = "success",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The user pays an invoice of the chat (the newest open one by default). Returns
        ``{"status": "paid" | "refused" | "timeout" | "declined" | "cancelled", ...}``."""
        if outcome not in OUTCOMES:
            raise ControlError(400, f"outcome must be one of {list(OUTCOMES)}")
        msg = self._invoice_message(conv, message_id)
        invoice = msg.invoice
        assert invoice is not None
        if outcome == "cancel":
            return {"status": "cancelled", "message_id": msg.message_id}
        query = PreCheckout(
            id=str(secrets.randbits(62)),
            bot_id=conv.bot.id,
            user_id=conv.user.id,
            message_id=msg.message_id,
        )
        self.queries[query.id] = query
        self.world.enqueue(
            conv.bot,
            "pre_checkout_query",
            {
                "id": query.id,
                "from": conv.user.to_user(),
                "currency": invoice["currency"],
                "total_amount": invoice["total_amount"],
                "invoice_payload": invoice["payload"],
            },
        )
        wait = self.world.config.pre_checkout_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(asyncio.shield(query.answer), wait)
        except TimeoutError:
            query.answer.cancel()  # a late answer is "too old"
            return self._failed(conv, msg, "timeout", "the bot did not answer in time")
        finally:
            self.queries.pop(query.id, None)
        answered_in = round(time.monotonic() - started, 4)
        if not answer["ok"]:
            return self._failed(conv, msg, "refused", answer["error_message"], answered_in)
        if outcome == "declined":
            return self._failed(conv, msg, "declined", "the card was declined", answered_in)
        if invoice["state"] == "paid":  # paid meanwhile in another window
            raise ControlError(409, "this invoice is paid already")
        payment = {
            "currency": invoice["currency"],
            "total_amount": invoice["total_amount"],
            "invoice_payload": invoice["payload"],
            "telegram_payment_charge_id": f"stub_{secrets.token_hex(12)}",
            "provider_payment_charge_id": f"{invoice['provider']}_{secrets.token_hex(10)}",
        }
        receipt = ChatMessage(
            message_id=conv.new_message_id(),
            from_bot=False,
            date=self.world.now(),
            successful_payment=payment,
        )
        conv.messages[receipt.message_id] = receipt
        invoice["state"] = "paid"
        invoice["receipt_message_id"] = receipt.message_id
        self.world.touch(conv)
        update_id = self.world.enqueue(conv.bot, "message", message_to_api(conv, receipt))
        return {
            "status": "paid",
            "message_id": msg.message_id,
            "receipt_message_id": receipt.message_id,
            "update_id": update_id,
            "answered_in": answered_in,
            "successful_payment": payment,
        }

    def _invoice_message(self, conv: Conversation, message_id: int | None) -> ChatMessage:
        invoices = [m for m in conv.visible() if m.invoice is not None]
        if message_id is not None:
            invoices = [m for m in invoices if m.message_id == message_id]
            if not invoices:
                raise ControlError(404, f"message {message_id} is not an invoice of this chat")
        else:
            invoices = [m for m in invoices if m.invoice and m.invoice["state"] != "paid"]
            if not invoices:
                raise ControlError(404, "the chat shows no open invoice")
        msg = invoices[-1]
        assert msg.invoice is not None
        if msg.invoice["state"] == "paid":
            raise ControlError(409, "this invoice is paid already")
        return msg

    def _failed(
        self,
        conv: Conversation,
        msg: ChatMessage,
        status: str,
        error: str | None,
        answered_in: float | None = None,
    ) -> dict[str, Any]:
        assert msg.invoice is not None
        msg.invoice["last_error"] = error
        self.world.touch(conv)
        return {
            "status": status,
            "message_id": msg.message_id,
            "error_message": error,
            "answered_in": answered_in,
        }
