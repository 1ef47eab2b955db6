"""The client book: search customers by name or phone; a customer's card with their visits,
no-shows, cancellations and total spent (counted by the core from their bookings), the owner's
notes; edit name and phone; block a customer from booking (or allow it again)."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader, ClientCard
from tenant_bot.booking.errors import BookingError
from tenant_bot.callbacks import Admin, Client
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_clients")

_FIELDS = {"n": "name", "p": "phone", "o": "notes"}


@routes.callback_query(Admin.filter(F.section == "cb"))
@routes.callback_query(Client.filter(F.action == "s"))
async def ask_search(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.client_search,
        prompt=texts(locale, "adm_cb_ask"),
        back=back_to_menu(texts, locale),
    )


@routes.message(OwnerInput.client_search, F.text)
async def search(message: Message, core: BookingCore, texts: BotTexts, locale: str) -> None:
    """The matches as buttons (the owner may search again by typing)."""
    query = (message.text or "").strip()
    try:
        found = await core.clients.search(query)
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    rows = [
        [button(f"{c.name} {c.phone or ''}".strip()[:60], Client(action="v", id=c.id).pack())]
        for c in found
    ]
    rows.append(back_to_menu(texts, locale))
    key = "adm_cb_found" if found else "adm_cb_none"
    await message.answer(
        texts(locale, key, query=query[:50], count=len(found)),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def card_screen(
    event: CallbackQuery | Message,
    card: ClientCard,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    settings = await cache.settings()
    customer = card.customer
    text = texts(
        locale,
        "adm_cb_card",
        name=customer.name,
        phone=customer.phone or "",
        chat=card.has_chat,
        since=texts.day(locale, card.since.astimezone(settings.zone).date()),
        visits=card.visits,
        no_shows=card.no_shows,
        cancellations=card.cancellations,
        upcoming=card.upcoming,
        spent=texts.money(card.spent, settings.currency),
        last_visit=texts.day(locale, card.last_visit.astimezone(settings.zone).date())
        if card.last_visit
        else "",
        notes=card.notes,
        blocked=card.blocked,
    )

    def action(key: str, act: str) -> list[InlineKeyboardButton]:
        return [button(texts(locale, key), Client(action=act, id=customer.id).pack())]

    rows = [
        action("adm_cb_edit_name", "n") + action("adm_cb_edit_phone", "p"),
        action("adm_cb_edit_notes", "o"),
        action("adm_cb_allow" if card.blocked else "adm_cb_block", "b"),
        action("adm_cb_search", "s"),
        back_to_menu(texts, locale),
    ]
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Client.filter(F.action == "v"))
async def view(
    callback: CallbackQuery,
    callback_data: Client,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    card = await core.clients.card(callback_data.id)
    await callback.answer()
    await state.clear()
    await card_screen(callback, card, cache, texts, locale)


@routes.callback_query(Client.filter(F.action == "b"))
async def block(
    callback: CallbackQuery,
    callback_data: Client,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """Block from booking (the very next attempt is refused), or allow it again."""
    current = await core.clients.card(callback_data.id)
    card = await core.clients.update(callback_data.id, blocked=not current.blocked)
    await callback.answer(texts(locale, "adm_cb_blocked" if card.blocked else "adm_cb_allowed"))
    await card_screen(callback, card, cache, texts, locale)


@routes.callback_query(Client.filter(F.action.in_(set(_FIELDS))))
async def ask_edit(
    callback: CallbackQuery, callback_data: Client, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    field = _FIELDS[callback_data.action]
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.client_edit,
        prompt=texts(locale, f"adm_cb_ask_{field}"),
        back=[button(texts(locale, "btn_back"), Client(action="v", id=callback_data.id).pack())],
        data={"customer_id": callback_data.id, "field": field},
    )


@routes.message(OwnerInput.client_edit, F.text)
async def save_edit(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    data = await state.get_data()
    value = (message.text or "").strip()
    if data["field"] == "notes" and value == "-":
        value = ""
    try:
        field = data["field"]
        card = await core.clients.update(
            data["customer_id"],
            name=value if field == "name" else None,
            phone=value if field == "phone" else None,
            notes=value if field == "notes" else None,
        )
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await state.clear()
    await card_screen(message, card, cache, texts, locale)
