"""One router per feature; :func:`routers` builds them in the order the dispatcher includes them."""

from __future__ import annotations

from aiogram import Router

# Routers built by :func:`prebuild_routers` in a process that then forks bots (the deploy worker's
# fork server), taken by the first :func:`routers` call of each forked bot.
_prebuilt: list[Router] | None = None


def prebuild_routers() -> None:
    """Build the feature routers now, for the next :func:`routers` call to take.

    For the fork server's warm-up: the routers (about a thousand handler, filter, observer and
    middleware-manager objects, plus every handler's signature) are the same for every bot, so
    built once before the fork they are shared copy-on-write instead of each bot building its own
    (about 1.5 MB of private memory per bot, issue 17). A router can join one dispatcher only:
    the first :func:`routers` call of a process takes them, later calls build fresh ones.
    """
    global _prebuilt
    _prebuilt = _build()


def routers() -> list[Router]:
    """Feature routers, most specific first; the fallback router (stale buttons, stray messages)
    stays last. Fresh ones, or those :func:`prebuild_routers` built (once)."""
    global _prebuilt
    if _prebuilt is not None:
        built, _prebuilt = _prebuilt, None
        return built
    return _build()


def _build() -> list[Router]:
    from tenant_bot.handlers import (
        attendance,
        booking,
        checkout,
        deep_link,
        fallback,
        language,
        mailings,
        my_bookings,
        payments,
        reviews,
        start,
    )
    from tenant_bot.handlers.admin import admin_router
    from tenant_bot.handlers.staff_desk import join_routes, staff_router

    return [
        payments.routes.build(),  # first: no state or fallback handler may take a payment
        join_routes.build(),  # /start j<token>: a staff member's invitation (issue 21)
        deep_link.routes.build(),  # /start <payload> of a booking link, before plain /start
        start.routes.build(),
        language.routes.build(),
        admin_router(),
        staff_router(),  # issue 21: staff book callers and walk-ins on their own schedule
        booking.routes.build(),
        checkout.routes.build(),
        my_bookings.routes.build(),
        attendance.routes.build(),
        reviews.routes.build(),
        mailings.routes.build(),
        fallback.routes.build(),
    ]
