"""One router per feature; :func:`routers` builds them in the order the dispatcher includes them."""

from __future__ import annotations

from aiogram import Router


def routers() -> list[Router]:
    """Fresh feature routers, most specific first; the fallback router (stale buttons, stray
    messages) stays last."""
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
