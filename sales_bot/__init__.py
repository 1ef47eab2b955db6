"""The sales bot: business owners pick a plan, give their bot's token, pay with YooKassa, and hear
when their bot is live; "My bots" renews, switches auto-renewal and changes tokens.

Layout: :mod:`sales_bot.app` (entry point and wiring), :mod:`sales_bot.handlers` (one router per
feature), :mod:`sales_bot.callbacks` / :mod:`sales_bot.states` / :mod:`sales_bot.keyboards`,
:mod:`sales_bot.middlewares` (locale, rate limit) and :mod:`sales_bot.outbox` (owner notifications).
The rules live in :mod:`fleet.billing`; texts in ``templates/sales_bot``.
"""
