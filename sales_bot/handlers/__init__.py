"""The sales bot's routers, one per feature; :func:`routers` builds them in the order they match."""

from __future__ import annotations

from aiogram import Router

from sales_bot.handlers import (
    fallback,
    my_bots,
    payment_history,
    plan_change,
    purchase,
    start,
)


def routers() -> list[Router]:
    """Fresh routers: feature routers first; the fallback (stale buttons, stray messages, errors)
    last."""
    return [
        module.router.build()
        for module in (
            start,
            purchase,
            my_bots,
            plan_change,
            payment_history,
            fallback,
        )
    ]
