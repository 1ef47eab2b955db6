"""An owner's bots: listing, auto-renewal switch, token change."""

from __future__ import annotations

import pytest

from fleet.billing.payments import PaymentOutcome
from fleet.billing.wiring import Billing
from fleet.bot_tokens import BotIdentity
from fleet.errors import ConflictError, NotFoundError, ValidationError
from sandbox.testing import bot_id_of, new_bot_token
from sandbox.yookassa import YooKassaStandIn


async def test_owner_sees_switches_and_rebinds_their_bot(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, secret_box
) -> None:
    owner = 7771001
    checkout = await billing.checkout.purchase(make_order(owner=owner))
    [bot] = await billing.accounts.list_bots(owner)
    assert bot.status == "new" and bot.paid_until is None and bot.subscription_status is None
    with pytest.raises(ValidationError):  # nothing paid yet
        await billing.accounts.set_auto_renew(
            owner_telegram_id=owner, tenant_id=bot.tenant_id, enabled=True
        )
    provider_id = await pool.fetchval(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", checkout.payment_id
    )
    yookassa_standin.succeed(provider_id)
    result = await billing.payments.apply(await billing.provider.get_payment(provider_id))
    assert result.outcome is PaymentOutcome.APPLIED
    [bot] = await billing.accounts.list_bots(owner)
    assert bot.status == "provisioning" and bot.paid_until is not None
    assert bot.price is not None and str(bot.price) == "990.00"
    with pytest.raises(ValidationError):  # no saved card
        await billing.accounts.set_auto_renew(
            owner_telegram_id=owner, tenant_id=bot.tenant_id, enabled=True
        )
    with pytest.raises(NotFoundError):  # someone else's bot
        await billing.accounts.get_bot(owner + 1, bot.tenant_id)

    # A token another tenant uses is refused; a fresh one is taken and the bot redeployed.
    other = await billing.checkout.purchase(make_order(owner=owner + 1))
    other_token = await pool.fetchval(
        "SELECT bot_id FROM control.tenants WHERE id = $1", other.tenant_id
    )
    taken = new_bot_token(other_token)
    with pytest.raises(ConflictError):
        await billing.accounts.change_token(
            owner_telegram_id=owner,
            tenant_id=bot.tenant_id,
            token=taken,
            identity=BotIdentity(id=other_token, username="x_bot", first_name="x"),
        )
    token = new_bot_token()
    changed = await billing.accounts.change_token(
        owner_telegram_id=owner,
        tenant_id=bot.tenant_id,
        token=token,
        identity=BotIdentity(id=bot_id_of(token), username="renamed_bot", first_name="R"),
    )
    assert changed.bot_username == "renamed_bot"
    tenant = await pool.fetchrow("SELECT * FROM control.tenants WHERE id = $1", bot.tenant_id)
    assert tenant["bot_id"] == bot_id_of(token)
    assert secret_box.decrypt(tenant["bot_token_enc"]) == token
    jobs = await pool.fetch(
        "SELECT kind FROM control.jobs WHERE tenant_id = $1 ORDER BY id", bot.tenant_id
    )
    assert [j["kind"] for j in jobs] == ["provision", "redeploy"]
