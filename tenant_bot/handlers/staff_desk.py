"""A staff member's desk (/staff): book a caller or a walk-in on their own schedule.

Only a staff member with a Telegram account (``staff.telegram_user_id``, the owner's team screen
links it) reaches these handlers: the router filter finds the sender among the active staff and
passes the member's id as ``own_staff_id``. The booking steps are the owner's own
(:mod:`tenant_bot.handlers.admin.owner_booking`), which then keep the staff pinned to that member;
the owner's other screens (settings, services, export) stay behind the owner-only router, so a
staff member tapping one is told the button is outdated, as is a customer tapping a staff button.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import NotFound
from tenant_bot.callbacks import Admin, Desk, Menu, OwnerNew
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.staff_invites import PAYLOAD, StaffInvites
from tenant_bot.states import OwnerBookingFlow
from tenant_bot.texts import BotTexts

routes = Routes("staff_desk")
join_routes = Routes("staff_join")


@join_routes.message(CommandStart(deep_link=True, magic=F.args.regexp(PAYLOAD)))
async def join(
    message: Message,
    command: CommandObject,
    core: BookingCore,
    invites: StaffInvites,
    texts: BotTexts,
    locale: str,
) -> None:
    """The owner's one-time invitation opened: the sender becomes that staff member's account."""
    staff_id = await invites.take(command.args or "")
    user = message.from_user
    if staff_id is None or user is None:
        await message.answer(texts(locale, "desk_invite_spent"))
        return
    try:
        member = await core.catalogue.update_staff(staff_id, telegram_user_id=user.id)
    except NotFound:  # removed since the owner made the link
        await message.answer(texts(locale, "desk_invite_spent"))
        return
    await message.answer(texts(locale, "desk_joined", name=member.name))


def _desk_update(event: object, raw_state: str | None) -> bool:
    """Whether the update can be for the desk at all: /staff, a desk or owner-booking button, or
    a step of the booking flow. Other updates (every customer's) cost no staff lookup, which
    would ask the database whether the catalogue is current."""
    if raw_state is not None and raw_state.startswith(OwnerBookingFlow.__name__):
        return True
    if isinstance(event, Message):
        return (event.text or "").startswith("/staff")
    if isinstance(event, CallbackQuery):
        return (event.data or "").startswith(_DESK_PREFIXES)
    return False


_DESK_PREFIXES = (f"{Desk.__prefix__}:", f"{Admin.__prefix__}:", f"{OwnerNew.__prefix__}:")


async def staff_member(
    event: object,
    is_owner: bool,
    cache: CatalogueReader,
    event_from_user: User | None = None,
    raw_state: str | None = None,
) -> bool | dict[str, Any]:
    """Router filter: the sender is an active staff member (not an owner: the owner's menu
    already holds every action); passes ``own_staff_id``."""
    if is_owner or event_from_user is None or not _desk_update(event, raw_state):
        return False
    for member in await cache.all_staff():
        if member.active and member.telegram_user_id == event_from_user.id:
            return {"own_staff_id": member.id}
    return False


@routes.message(Command("staff"))
@routes.callback_query(Desk.filter(F.action == "menu"))
async def desk(
    event: Message | CallbackQuery,
    state: FSMContext,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    own_staff_id: int,
) -> None:
    """New booking, walk-in now, and the way home."""
    if isinstance(event, CallbackQuery):
        await event.answer()
    await state.clear()
    rows = [
        [
            button(texts(locale, "adm_btn_new_booking"), Admin(section="nb").pack()),
            button(texts(locale, "adm_btn_walk_in"), Admin(section="wi").pack()),
        ],
        [button(texts(locale, "btn_home"), Menu(action="home").pack())],
    ]
    name = await cache.staff_name(own_staff_id)
    await show(
        event, texts(locale, "desk_menu", name=name), InlineKeyboardMarkup(inline_keyboard=rows)
    )


def staff_router() -> Router:
    """A fresh staff router: the desk, and the owner's booking steps on the member's schedule."""
    from tenant_bot.handlers.admin import owner_booking

    router = Router(name="staff")
    router.message.filter(staff_member)
    router.callback_query.filter(staff_member)
    router.include_routers(routes.build(), owner_booking.routes.build())
    return router
