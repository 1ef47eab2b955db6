"""Services: list, add, edit (one typed line: name; minutes; price), switch on/off."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from kit.routing import Routes
from tenant_bot.booking import BookingCore
from tenant_bot.booking.models import Service
from tenant_bot.callbacks import Admin, ServiceEdit
from tenant_bot.handlers.admin.common import (
    ask_for_input,
    back_to_menu,
    change_or_explain,
    input_saved,
    on_off_row,
    paused_mark,
    show_catalogue_list,
)
from tenant_bot.handlers.common import sender, show
from tenant_bot.keyboards import button
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_services")


def parse_service(text: str) -> tuple[str, int, Decimal]:
    """``Haircut; 60; 1500`` -> (name, minutes, price); raises ``ValueError``."""
    parts = [p.strip() for p in text.split(";")]
    if len(parts) != 3 or not parts[0]:
        raise ValueError(text)
    try:
        minutes = int(parts[1])
        price = Decimal(parts[2].replace(",", ".").replace(" ", ""))
    except (ValueError, InvalidOperation) as exc:
        raise ValueError(text) from exc
    if not 5 <= minutes <= 1440 or price < 0:
        raise ValueError(text)
    return parts[0][:100], minutes, price


def _label(texts: BotTexts, locale: str, service: Service) -> str:
    return paused_mark(service.active) + texts(
        locale,
        "service_button",
        name=service.name,
        duration=texts.duration(locale, service.duration_minutes),
        price=texts.money(service.price, service.currency),
    )


async def services_screen(
    event: CallbackQuery | Message, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    items = await core.catalogue.list_services(active_only=False)
    add = ServiceEdit(service_id=0, action="new").pack()
    await show_catalogue_list(
        event,
        title=texts(locale, "adm_services_title", count=len(items)),
        entries=[
            (_label(texts, locale, s)[:60], ServiceEdit(service_id=s.id).pack()) for s in items
        ],
        add=button(texts(locale, "adm_add_service"), add),
        texts=texts,
        locale=locale,
    )


async def service_card(
    event: CallbackQuery | Message, service: Service, texts: BotTexts, locale: str
) -> None:
    text = texts(
        locale,
        "adm_service_card",
        name=service.name,
        duration=texts.duration(locale, service.duration_minutes),
        price=texts.money(service.price, service.currency),
        active=service.active,
    )
    rows = [
        [button(texts(locale, "adm_edit"), ServiceEdit(service_id=service.id, action="e").pack())],
        on_off_row(
            texts,
            locale,
            active=service.active,
            callback_data=ServiceEdit(service_id=service.id, action="t").pack(),
        ),
        back_to_menu(texts, locale, "services"),
    ]
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "services"))
async def services(
    callback: CallbackQuery, state: FSMContext, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    await services_screen(callback, core, texts, locale)


@routes.callback_query(ServiceEdit.filter(F.action == "v"))
async def view(
    callback: CallbackQuery,
    callback_data: ServiceEdit,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    service = await core.catalogue.get_service(callback_data.service_id)
    await callback.answer()
    await service_card(callback, service, texts, locale)


@routes.callback_query(ServiceEdit.filter(F.action == "t"))
async def toggle(
    callback: CallbackQuery,
    callback_data: ServiceEdit,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    service = await core.catalogue.get_service(callback_data.service_id)
    service = await core.catalogue.update_service(service.id, active=not service.active)
    await callback.answer()
    await service_card(callback, service, texts, locale)


@routes.callback_query(ServiceEdit.filter(F.action.in_({"new", "e"})))
async def ask_form(
    callback: CallbackQuery,
    callback_data: ServiceEdit,
    state: FSMContext,
    texts: BotTexts,
    locale: str,
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.service_form,
        prompt=texts(locale, "adm_ask_service"),
        back=back_to_menu(texts, locale, "services"),
        data={"service_id": callback_data.service_id},
    )


@routes.message(OwnerInput.service_form, F.text)
async def save(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    try:
        name, minutes, price = parse_service(message.text or "")
    except ValueError:
        await message.answer(texts(locale, "adm_bad_service"))
        return
    service_id = (await state.get_data()).get("service_id", 0)
    service = await change_or_explain(
        message,
        texts,
        locale,
        _store(
            core,
            service_id=service_id,
            name=name,
            minutes=minutes,
            price=price,
            owner=sender(message),
        ),
    )
    if service is None:
        return
    await input_saved(message, state, texts, locale)
    await service_card(message, service, texts, locale)


async def _store(
    core: BookingCore,
    *,
    service_id: int,
    name: str,
    minutes: int,
    price: Decimal,
    owner: User,
) -> Service:
    """Update the service, or add it (``service_id`` 0): the core has every staff member provide
    it, and makes the owner the one staff member of a business that has none."""
    if service_id:
        return await core.catalogue.update_service(
            service_id, name=name, duration_minutes=minutes, price=price
        )
    return await core.catalogue.add_service(
        name=name,
        duration_minutes=minutes,
        price=price,
        owner_name=owner.full_name,
        owner_telegram_id=owner.id,
    )
