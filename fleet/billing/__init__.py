"""Billing: YooKassa payments, subscriptions and their lifecycle, and what owners do with them.

Modules, one concept each:

- :mod:`fleet.billing.errors` — the billing error tree.
- :mod:`fleet.billing.config` — :class:`BillingConfig`, the billing part of the settings.
- :mod:`fleet.billing.yookassa` — an async YooKassa API client (httpx, retries with one key).
- :mod:`fleet.billing.notifications` — the webhook body and the sender-IP policy.
- :mod:`fleet.billing.payments` — :class:`PaymentService`: checkouts and notification processing.
- :mod:`fleet.billing.subscriptions` — :class:`SubscriptionLifecycle`: reminders, expiry, grace,
  suspension, deletion, automatic renewal.
- :mod:`fleet.billing.accounts` — :class:`OwnerAccounts`: an owner's bots, auto-renewal (with the
  owner's recorded consent), payment history, token change (the token checked first with
  :class:`fleet.bot_tokens.BotTokenChecker`).
- :mod:`fleet.billing.plan_changes` — :class:`PlanChangeService`: the plan change rule (upgrade at
  once with the unused time credited, downgrade at the end of the paid time), quoted and carried out;
  :mod:`fleet.billing.prorate` holds its arithmetic.
"""
