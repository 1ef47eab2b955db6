"""The owner menu (/admin): only the owner ids of the runtime contract reach these handlers.

Anyone else tapping an owner button (a forwarded message, a forged payload) falls through to the
"this button is outdated" answer; /admin from a customer is an unknown command to them.
"""

from __future__ import annotations

from aiogram import Router


def owner_only(_: object, is_owner: bool) -> bool:
    """Router filter: the user is one of the tenant's owners."""
    return is_owner


def admin_router() -> Router:
    """A fresh owner router holding every owner feature."""
    from tenant_bot.handlers.admin import (
        blocks,
        booking_card,
        booking_link,
        broadcasts,
        calendar,
        clients,
        date_hours,
        export,
        holidays,
        hours,
        menu,
        move,
        owner_booking,
        payments,
        profile,
        reviews,
        services,
        settings,
        staff,
        stats,
        vacations,
    )

    router = Router(name="admin")
    router.message.filter(owner_only)
    router.callback_query.filter(owner_only)
    router.include_routers(
        *(
            module.routes.build()
            for module in (
                menu,
                booking_card,
                move,
                owner_booking,
                clients,
                blocks,
                vacations,
                holidays,
                services,
                staff,
                hours,
                date_hours,
                settings,
                payments,
                profile,
                export,
                reviews,
                broadcasts,
                calendar,
                booking_link,
                stats,
            )
        )
    )
    return router
