"""The YooKassa stand-in through the official SDK and plain httpx."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from yookassa import Configuration, Payment
from yookassa.domain.exceptions import BadRequestError, NotFoundError, UnauthorizedError
from yookassa.domain.notification import WebhookNotificationFactory

from sandbox._http import RunningApp, serve_app
from sandbox.yookassa import YooKassaSandbox, YooKassaStandIn

NOTIFY_FROM = "127.0.0.77"


def payment_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "amount": {"value": "990.00", "currency": "RUB"},
        "confirmation": {"type": "redirect", "return_url": "https://t.me/sales_bot"},
        "capture": True,
        "description": "Plan Basic, 1 month",
        "metadata": {"tenant": "barber_one"},
    }
    body.update(overrides)
    return body


class Receiver:
    """A merchant webhook that fails the first ``failures`` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str, dict[str, object]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=503)
        self.received.append((request.remote or "", await request.json()))
        self.arrived.set()
        return web.Response()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, RunningApp]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/yookassa", hook.handle)
    running = await serve_app(app, host="127.0.0.1", port=0)
    yield hook, running
    await running.stop()


@pytest.fixture
def sdk(yookassa_standin: YooKassaStandIn) -> YooKassaStandIn:
    Configuration.configure(
        yookassa_standin.shop_id, yookassa_standin.secret_key, api_url=yookassa_standin.api_url
    )
    return yookassa_standin


async def test_sdk_create_is_idempotent_and_fetch_matches(sdk):
    key = str(uuid.uuid4())
    created = await asyncio.to_thread(Payment.create, payment_body(), key)
    again = await asyncio.to_thread(Payment.create, payment_body(), key)
    assert again.id == created.id
    assert created.status == "pending" and created.paid is False and created.test is True
    assert created.amount.value == 990 and created.amount.currency == "RUB"
    assert created.metadata["tenant"] == "barber_one"
    assert created.confirmation.confirmation_url.startswith(f"{sdk.base_url}/checkout/")
    fetched = await asyncio.to_thread(Payment.find_one, created.id)
    assert fetched.id == created.id and fetched.description == "Plan Basic, 1 month"
    with pytest.raises(BadRequestError) as reused:
        await asyncio.to_thread(Payment.create, payment_body(description="other"), key)
    assert reused.value.args[0]["parameter"] == "Idempotence-Key"
    with pytest.raises(NotFoundError):
        await asyncio.to_thread(Payment.find_one, "no-such-payment")


async def test_confirm_page_pay_notifies_from_configured_address(
    sdk, receiver, yookassa_sandbox: YooKassaSandbox
):
    hook, running = receiver
    await yookassa_sandbox.set_webhook(
        f"{running.base_url}/webhooks/yookassa", source_address=NOTIFY_FROM
    )
    payment = await asyncio.to_thread(Payment.create, payment_body(save_payment_method=True))
    async with httpx.AsyncClient() as http:
        page = await http.get(payment.confirmation.confirmation_url)
        assert page.status_code == 200 and "990.00 RUB" in page.text and ">Pay<" in page.text
        paid = await http.post(f"{payment.confirmation.confirmation_url}/pay")
    assert paid.status_code == 303 and paid.headers["location"] == "https://t.me/sales_bot"
    await asyncio.wait_for(hook.arrived.wait(), 5)
    remote, body = hook.received[0]
    assert remote == NOTIFY_FROM
    notification = WebhookNotificationFactory().create(body)
    assert notification.event == "payment.succeeded"
    assert notification.object.id == payment.id and notification.object.paid is True
    method = notification.object.payment_method
    assert method.saved is True and method.type == "bank_card"

    # auto-renewal: a payment with the saved method succeeds at once, with no confirmation
    renewal = await asyncio.to_thread(
        Payment.create,
        {
            "amount": {"value": "990.00", "currency": "RUB"},
            "capture": True,
            "payment_method_id": method.id,
        },
    )
    assert renewal.status == "succeeded" and renewal.confirmation is None


async def test_cancel_and_capture_flows(sdk, yookassa_sandbox):
    two_step = await asyncio.to_thread(Payment.create, payment_body(capture=False))
    with pytest.raises(BadRequestError):  # merchants cancel only waiting_for_capture payments
        await asyncio.to_thread(Payment.cancel, two_step.id)
    await yookassa_sandbox.succeed(two_step.id)
    waiting = await asyncio.to_thread(Payment.find_one, two_step.id)
    assert waiting.status == "waiting_for_capture" and waiting.paid is True
    canceled = await asyncio.to_thread(Payment.cancel, two_step.id)
    assert canceled.status == "canceled"
    assert canceled.cancellation_details.party == "merchant"
    assert canceled.cancellation_details.reason == "canceled_by_merchant"

    other = await asyncio.to_thread(Payment.create, payment_body(capture=False))
    await yookassa_sandbox.succeed(other.id)
    captured = await asyncio.to_thread(Payment.capture, other.id)
    assert captured.status == "succeeded" and captured.captured_at

    abandoned = await asyncio.to_thread(Payment.create, payment_body())
    result = await yookassa_sandbox.cancel(abandoned.id)
    assert result["status"] == "canceled"
    assert result["cancellation_details"] == {
        "party": "yoo_money",
        "reason": "expired_on_confirmation",
    }


async def test_wrong_credentials_via_sdk(yookassa_standin):
    Configuration.configure(yookassa_standin.shop_id, "wrong", api_url=yookassa_standin.api_url)
    with pytest.raises(UnauthorizedError) as error:
        await asyncio.to_thread(Payment.create, payment_body())
    assert error.value.args[0]["code"] == "invalid_credentials"


async def test_notifications_are_retried_until_accepted(
    yookassa_standin, receiver, yookassa_sandbox
):
    hook, running = receiver
    hook.failures = 2
    yookassa_standin.set_webhook(f"{running.base_url}/webhooks/yookassa")
    auth = (yookassa_standin.shop_id, yookassa_standin.secret_key)
    async with httpx.AsyncClient(auth=auth) as http:
        created = await http.post(
            yookassa_standin.api_url + "/payments",
            json=payment_body(),
            headers={"Idempotence-Key": "k-1"},
        )
    payment_id = created.json()["id"]
    await yookassa_sandbox.cancel(payment_id)
    await yookassa_standin.wait_notifications()
    log = await yookassa_sandbox.notifications()
    assert log[0]["event"] == "payment.canceled"
    assert log[0]["delivered"] is True and log[0]["attempts"] == 3
    assert hook.received[0][1]["object"]["status"] == "canceled"


async def test_bad_input_over_http(yookassa_standin):
    url = yookassa_standin.api_url + "/payments"
    auth = (yookassa_standin.shop_id, yookassa_standin.secret_key)
    async with httpx.AsyncClient() as http:
        no_auth = await http.post(url, json=payment_body(), headers={"Idempotence-Key": "a"})
        wrong = await http.get(url + "/x", auth=(yookassa_standin.shop_id, "nope"))
        no_key = await http.post(url, json=payment_body(), auth=auth)
        malformed = await http.post(
            url,
            content=b"{not json",
            headers={"Idempotence-Key": "b", "Content-Type": "application/json"},
            auth=auth,
        )
        no_amount = await http.post(
            url, json=payment_body(amount=None), headers={"Idempotence-Key": "c"}, auth=auth
        )
        bad_value = await http.post(
            url,
            json=payment_body(amount={"value": "-1", "currency": "RUB"}),
            headers={"Idempotence-Key": "d"},
            auth=auth,
        )
        no_return = await http.post(
            url,
            json=payment_body(confirmation={"type": "redirect"}),
            headers={"Idempotence-Key": "e"},
            auth=auth,
        )
    assert no_auth.status_code == 401 and no_auth.json()["code"] == "invalid_credentials"
    assert wrong.status_code == 401 and wrong.json()["type"] == "error"
    assert no_key.status_code == 400 and no_key.json()["parameter"] == "Idempotence-Key"
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_request"
    assert no_amount.status_code == 400 and no_amount.json()["parameter"] == "amount"
    assert bad_value.json()["parameter"] == "amount.value"
    assert no_return.json()["parameter"] == "confirmation.return_url"
    for response in (no_auth, no_key, malformed, no_amount):
        assert set(response.json()) >= {"type", "id", "code", "description"}


async def test_fault_injection(yookassa_standin, yookassa_sandbox):
    await yookassa_sandbox.inject_fault("create", status=500, count=1)
    auth = (yookassa_standin.shop_id, yookassa_standin.secret_key)
    headers = {"Idempotence-Key": "same-key"}
    async with httpx.AsyncClient(auth=auth) as http:
        url = yookassa_standin.api_url + "/payments"
        failed = await http.post(url, json=payment_body(), headers=headers)
        retried = await http.post(url, json=payment_body(), headers=headers)
        await yookassa_sandbox.inject_fault("get", status=None, delay=2)
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{url}/{retried.json()['id']}", timeout=0.2)
    assert failed.status_code == 500 and failed.json()["code"] == "internal_server_error"
    assert retried.status_code == 200
