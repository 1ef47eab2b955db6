"""``/start <payload>`` from a booking link or QR code: the welcome, then straight to the choice.

A link that does not parse or points at a service or staff member that is gone or switched off
gets the normal welcome (:func:`tenant_bot.handlers.start.start`), never an error.
"""

from __future__ import annotations

from aiogram.filters import CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardRemove

from kit.routing import Routes
from schemas.runtime import TenantRuntime
from tenant_bot import keyboards
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import Clock, Service
from tenant_bot.deep_links import LinkTarget, parse
from tenant_bot.handlers import start as start_handlers
from tenant_bot.handlers.booking import _calendar, begin_draft
from tenant_bot.handlers.common import show, welcome
from tenant_bot.outreach_views import rating_line
from tenant_bot.states import BookingFlow
from tenant_bot.texts import BotTexts

routes = Routes("deep_link")


async def _services_for(target: LinkTarget, cache: CatalogueReader) -> list[Service]:
    """The active services a link offers (empty: the link is stale)."""
    services = await cache.services()
    if target.kind == "b":
        return services
    if target.kind == "s":
        return [s for s in services if s.id == target.item_id and await cache.staff_for(s.id)]
    offered = []
    for service in services:
        if target.item_id in {m.id for m in await cache.staff_for(service.id)}:
            offered.append(service)
    return offered


@routes.message(CommandStart(deep_link=True))
async def start_from_link(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    texts: BotTexts,
    core: BookingCore,
    cache: CatalogueReader,
    runtime: TenantRuntime,
    clock: Clock,
    locale: str,
    is_owner: bool,
) -> None:
    target = parse(command.args)
    services = await _services_for(target, cache) if target is not None else []
    if target is None or not services:
        await start_handlers.start(
            message,
            state=state,
            texts=texts,
            cache=cache,
            core=core,
            runtime=runtime,
            locale=locale,
            is_owner=is_owner,
        )
        return
    await state.clear()
    settings = await cache.settings()
    text = welcome(texts, locale, settings, runtime.display_name or runtime.slug)
    rating = rating_line(texts, locale, (await core.reviews.ratings()).business)
    if rating:  # as on /start: the business's rating past the owner's threshold
        text += "\n\n" + rating
    await message.answer(text, reply_markup=ReplyKeyboardRemove())
    if not await begin_draft(message, state, core, cache, texts, locale):
        return
    if target.kind == "f":
        await state.update_data(via_staff=target.item_id)
    if target.kind == "b" or len(services) > 1:
        await show(
            message, texts(locale, "pick_service"), keyboards.services(texts, locale, services)
        )
        return
    service = services[0]
    staff = await cache.staff_for(service.id)
    if target.kind == "f":
        staff = [m for m in staff if m.id == target.item_id]
    only = staff[0].id if len(staff) == 1 else 0
    await state.update_data(service_id=service.id, staff_id=only, offset=0)
    if len(staff) > 1:
        await state.set_state(BookingFlow.staff)
        await show(
            message,
            texts(locale, "pick_staff", service=service.name),
            keyboards.staff(texts, locale, staff),
        )
        return
    await _calendar(message, state, core, cache, texts, clock, locale)
