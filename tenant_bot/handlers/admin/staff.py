"""Staff: list, add, switch on/off, which services each provides (weekly hours: :mod:`.hours`),
and the Telegram account of their /staff desk: invite (a one-time link), unlink.

A linked member's chat has /staff in its command menu while the member is linked and switched on:
switching them off or unlinking them takes it away, switching them back on gives it back (in the
language they last used the bot in, :class:`~tenant_bot.middlewares.locale.LocaleStore`)."""

from __future__ import annotations

from aiogram import Bot, F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from kit.routing import Routes
from schemas.runtime import TenantRuntime
from tenant_bot.booking import BookingCore
from tenant_bot.booking.models import Staff
from tenant_bot.callbacks import Admin, StaffEdit
from tenant_bot.commands import remove_staff_menu, set_staff_menu
from tenant_bot.handlers.admin.common import (
    ask_for_input,
    back_to_menu,
    input_saved,
    on_off_row,
    paused_mark,
    show_catalogue_list,
)
from tenant_bot.handlers.admin.hours import weekday_hours
from tenant_bot.handlers.common import sender, show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.staff_invites import INVITE_TTL, StaffInvites
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_staff")


def _back_to_card(texts: BotTexts, locale: str, staff_id: int) -> list[InlineKeyboardButton]:
    return [button(texts(locale, "btn_back"), StaffEdit(staff_id=staff_id).pack())]


async def staff_screen(
    event: CallbackQuery | Message, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    owner = sender(event)
    # the core makes a business with no staff its owner's: a solo owner never adds themself
    items = await core.catalogue.team(owner_name=owner.full_name, owner_telegram_id=owner.id)
    add = StaffEdit(staff_id=0, action="new").pack()
    await show_catalogue_list(
        event,
        title=texts(locale, "adm_staff_title", count=len(items)),
        entries=[(paused_mark(m.active) + m.name, StaffEdit(staff_id=m.id).pack()) for m in items],
        add=button(texts(locale, "adm_add_staff"), add),
        texts=texts,
        locale=locale,
    )


async def staff_card(
    event: CallbackQuery | Message, member: Staff, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    hours = await core.catalogue.get_working_hours(member.id)
    services = {s.id: s.name for s in await core.catalogue.list_services(active_only=False)}
    week = "\n".join(
        weekday_hours(texts, locale, name, hours.get(wd, []))
        for wd, name in enumerate(texts.weekday_names(locale))
    )
    text = texts(
        locale,
        "adm_staff_card",
        name=member.name,
        active=member.active,
        services=", ".join(services[i] for i in member.service_ids if i in services),
        hours=week,
    )
    if member.telegram_user_id is not None:
        text += "\n\n" + texts(locale, "desk_linked_mark")
    rows = [
        [
            button(texts(locale, "adm_hours"), StaffEdit(staff_id=member.id, action="h").pack()),
            button(
                texts(locale, "adm_staff_services"),
                StaffEdit(staff_id=member.id, action="s").pack(),
            ),
        ],
        on_off_row(
            texts,
            locale,
            active=member.active,
            callback_data=StaffEdit(staff_id=member.id, action="t").pack(),
        ),
        [  # issue 21: link their Telegram account for the /staff desk
            button(texts(locale, "desk_invite"), StaffEdit(staff_id=member.id, action="inv").pack())
        ],
        back_to_menu(texts, locale, "staff"),
    ]
    if member.telegram_user_id is not None:
        unlink = StaffEdit(staff_id=member.id, action="un").pack()
        rows.insert(-1, [button(texts(locale, "desk_unlink"), unlink)])
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "staff"))
async def staff(
    callback: CallbackQuery, state: FSMContext, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    await staff_screen(callback, core, texts, locale)


@routes.callback_query(StaffEdit.filter(F.action == "v"))
async def view(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    member = await core.catalogue.get_staff(callback_data.staff_id)
    await callback.answer()
    await state.clear()
    await staff_card(callback, member, core, texts, locale)


@routes.callback_query(StaffEdit.filter(F.action == "t"))
async def toggle(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    bot: Bot,
    core: BookingCore,
    locales: LocaleStore,
    texts: BotTexts,
    locale: str,
    runtime: TenantRuntime,
) -> None:
    member = await core.catalogue.get_staff(callback_data.staff_id)
    member = await core.catalogue.update_staff(member.id, active=not member.active)
    await callback.answer()
    account = member.telegram_user_id
    # the desk's command menu follows the switch (an owner's menu is the owner's)
    if account is not None and account not in runtime.owner_ids:
        if member.active:
            chosen = await locales.get(account)
            await set_staff_menu(
                bot, texts=texts, chat_id=account, locale=chosen or texts.default_locale
            )
        else:
            await remove_staff_menu(bot, chat_id=account)
    await staff_card(callback, member, core, texts, locale)


@routes.callback_query(StaffEdit.filter(F.action == "new"))
async def ask_name(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.staff_name,
        prompt=texts(locale, "adm_ask_staff"),
        back=back_to_menu(texts, locale, "staff"),
    )


@routes.message(OwnerInput.staff_name, F.text)
async def add(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """A new staff member providing every service (the owner narrows it down on the card)."""
    name = (message.text or "").strip()
    if not 1 <= len(name) <= 100:
        await message.answer(texts(locale, "bad_name"))
        return
    services = await core.catalogue.list_services(active_only=False)
    member = await core.catalogue.create_staff(name=name, service_ids=[s.id for s in services])
    await input_saved(message, state, texts, locale)
    await staff_card(message, member, core, texts, locale)


@routes.callback_query(StaffEdit.filter(F.action.in_({"s", "sv"})))
async def services(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """Tick the services the staff member provides (``sv`` toggles one)."""
    member = await core.catalogue.get_staff(callback_data.staff_id)
    if callback_data.action == "sv":
        chosen = set(member.service_ids) ^ {callback_data.service_id}
        member = await core.catalogue.set_staff_services(member.id, sorted(chosen))
    await callback.answer()
    rows = [
        [
            button(
                ("✅ " if s.id in member.service_ids else "▫️ ") + s.name,
                StaffEdit(staff_id=member.id, action="sv", service_id=s.id).pack(),
            )
        ]
        for s in await core.catalogue.list_services(active_only=False)
    ]
    rows.append(_back_to_card(texts, locale, member.id))
    await show(
        callback,
        texts(locale, "adm_staff_services_title", name=member.name),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


@routes.callback_query(StaffEdit.filter(F.action == "inv"))
async def invite(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    bot: Bot,
    core: BookingCore,
    invites: StaffInvites,
    texts: BotTexts,
    locale: str,
) -> None:
    """A one-time link: whoever opens it becomes this staff member's Telegram account."""
    member = await core.catalogue.get_staff(callback_data.staff_id)
    payload = await invites.create(member.id)
    me = await bot.me()
    await callback.answer()
    await show(
        callback,
        texts(
            locale,
            "desk_invite_link",
            name=member.name,
            url=f"https://t.me/{me.username or ''}?start={payload}",
            hours=INVITE_TTL // 3600,
        ),
        InlineKeyboardMarkup(inline_keyboard=[_back_to_card(texts, locale, member.id)]),
    )


@routes.callback_query(StaffEdit.filter(F.action == "un"))
async def unlink(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    bot: Bot,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
    runtime: TenantRuntime,
) -> None:
    """The member's Telegram account loses the /staff desk and its menu (a phone lost, someone
    who left); their bookings and hours stay. A repeated tap changes nothing."""
    member = await core.catalogue.get_staff(callback_data.staff_id)
    account = member.telegram_user_id
    if account is not None:
        member = await core.catalogue.update_staff(member.id, telegram_user_id=None)
        if account not in runtime.owner_ids:
            await remove_staff_menu(bot, chat_id=account)
    await callback.answer(texts(locale, "desk_unlinked", name=member.name), show_alert=True)
    await staff_card(callback, member, core, texts, locale)
