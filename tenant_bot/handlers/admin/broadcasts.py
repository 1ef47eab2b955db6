"""The owner's mailings: write (text or photo), pick the audience, see the preview and the count,
confirm; then the progress and the report come from the sender (:mod:`tenant_bot.broadcaster`)."""

from __future__ import annotations

import secrets
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.outreach import (
    MESSAGE_MAX_CHARS,
    PHOTO_CAPTION_MAX_CHARS,
    Audience,
    AudienceChoice,
    telegram_length,
)
from tenant_bot.broadcaster import Broadcaster
from tenant_bot.callbacks import Admin, MailingAdmin
from tenant_bot.handlers.admin.common import back_to_menu
from tenant_bot.handlers.common import sender_id, show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.outreach_views import (
    audience_label,
    progress_text,
    send_mailing,
    stop_keyboard,
    unsubscribe_keyboard,
)
from tenant_bot.states import MailingFlow
from tenant_bot.texts import BotTexts

routes = Routes("admin_mailings")

SHOWN = 8
DAY_CHOICES = (30, 60, 90, 180)


def _mailing_button(texts: BotTexts, locale: str, key: str, action: str, value: str = "") -> list:
    return [button(texts(locale, key), MailingAdmin(action=action, value=value).pack())]


async def mailings_screen(
    event: CallbackQuery | Message,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    zone = (await cache.settings()).zone
    lines = []
    for mailing, counts in await core.broadcasts.recent(limit=SHOWN):
        name = ""
        if mailing.audience.service_id:
            try:
                name = (await cache.service(mailing.audience.service_id)).name
            except BookingError:
                name = ""
        lines.append(
            texts(
                locale,
                "adm_mailing_line",
                day=texts.day(locale, mailing.created_at.astimezone(zone).date()),
                audience=audience_label(texts, locale, mailing.audience, name),
                sent=counts.sent,
                blocked=counts.blocked,
                failed=counts.failed,
                total=counts.total,
                status=mailing.status,
            )
        )
    rows = [
        _mailing_button(texts, locale, "btn_mailing_new", "new"),
        back_to_menu(texts, locale),
    ]
    text = texts(locale, "adm_mailings", lines="\n".join(lines))
    await show(event, text[:4000], InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "mailings"))
async def open_mailings(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    await callback.answer()
    await state.clear()
    await mailings_screen(callback, core, cache, texts, locale)


@routes.callback_query(MailingAdmin.filter(F.action == "new"))
async def new_mailing(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.set_state(MailingFlow.text)
    await state.set_data({"draft": secrets.token_hex(8)})
    await show(
        callback,
        texts(locale, "mailing_ask_text"),
        InlineKeyboardMarkup(inline_keyboard=[back_to_menu(texts, locale, "mailings")]),
    )


def _audience_keyboard(texts: BotTexts, locale: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            _mailing_button(texts, locale, "btn_aud_all", "aud", "all"),
            _mailing_button(texts, locale, "btn_aud_recent", "aud", "recent"),
            _mailing_button(texts, locale, "btn_aud_lapsed", "aud", "lapsed"),
            _mailing_button(texts, locale, "btn_aud_service", "aud", "service"),
            _mailing_button(texts, locale, "btn_mailing_discard", "discard"),
        ]
    )


@routes.message(MailingFlow.text)
async def got_text(message: Message, state: FSMContext, texts: BotTexts, locale: str) -> None:
    """The mailing as the owner wrote it: its formatting kept (HTML), a photo's largest size.

    A photo's caption longer than Telegram lets a bot send (1024 characters, while a text may
    have 4096) is refused here, before any preview or sending, with what to do instead."""
    photo = message.photo[-1].file_id if message.photo else None
    if photo is not None:
        length = telegram_length(message.caption or "")
        if length > PHOTO_CAPTION_MAX_CHARS:
            await message.answer(
                texts(
                    locale,
                    "mailing_caption_too_long",
                    length=length,
                    limit=PHOTO_CAPTION_MAX_CHARS,
                    text_limit=MESSAGE_MAX_CHARS,
                )
            )
            return
        text = message.html_text if message.caption else ""
    elif message.text:
        text = message.html_text
    else:
        await message.answer(texts(locale, "mailing_need_text"))
        return
    await state.update_data(text=text, photo=photo)
    await state.set_state(MailingFlow.confirm)
    await message.answer(
        texts(locale, "mailing_pick_audience"), reply_markup=_audience_keyboard(texts, locale)
    )


@routes.callback_query(MailingAdmin.filter(F.action == "aud"))
async def pick_audience(
    callback: CallbackQuery,
    callback_data: MailingAdmin,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    if "text" not in await state.get_data():
        await callback.answer(texts(locale, "mailing_gone"), show_alert=True)
        return
    kind = callback_data.value
    if kind == Audience.ALL.value:
        await callback.answer()
        await _preview(callback, state, core, cache, texts, locale, AudienceChoice(Audience.ALL))
        return
    if kind == Audience.SERVICE.value:
        await callback.answer()
        services = await cache.services()
        rows = [
            [button(s.name[:60], MailingAdmin(action="svc", value=str(s.id)).pack())]
            for s in services
        ]
        rows.append(_mailing_button(texts, locale, "btn_back", "back"))
        await show(
            callback,
            texts(locale, "mailing_pick_service"),
            InlineKeyboardMarkup(inline_keyboard=rows),
        )
        return
    if kind not in (Audience.RECENT.value, Audience.LAPSED.value):
        await callback.answer(texts(locale, "stale_button"))
        return
    await callback.answer()
    await state.update_data(kind=kind)
    await state.set_state(MailingFlow.days)
    rows = [
        [
            button(
                texts(locale, "btn_days", days=d), MailingAdmin(action="days", value=str(d)).pack()
            )
            for d in DAY_CHOICES
        ],
        _mailing_button(texts, locale, "btn_back", "back"),
    ]
    await show(
        callback,
        texts(locale, "mailing_ask_days", kind=kind),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


@routes.callback_query(MailingAdmin.filter(F.action == "back"))
async def back_to_audiences(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    if "text" not in await state.get_data():
        await show(callback, texts(locale, "mailing_gone"))
        return
    await state.set_state(MailingFlow.confirm)
    await show(callback, texts(locale, "mailing_pick_audience"), _audience_keyboard(texts, locale))


async def _days_chosen(
    event: CallbackQuery | Message,
    text: str,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    data = await state.get_data()
    if "text" not in data or "kind" not in data:
        await show(event, texts(locale, "mailing_gone"))
        return
    try:
        choice = core.broadcasts.audience(data["kind"], days=int(text.strip()))
    except (ValueError, BookingError):
        await show(event, texts(locale, "mailing_bad_days"))
        return
    await _preview(event, state, core, cache, texts, locale, choice)


@routes.callback_query(MailingAdmin.filter(F.action == "days"))
async def tapped_days(
    callback: CallbackQuery,
    callback_data: MailingAdmin,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    await callback.answer()
    await _days_chosen(callback, callback_data.value, state, core, cache, texts, locale)


@routes.message(MailingFlow.days, F.text)
async def typed_days(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    await _days_chosen(message, message.text or "", state, core, cache, texts, locale)


@routes.callback_query(MailingAdmin.filter(F.action == "svc"))
async def picked_service(
    callback: CallbackQuery,
    callback_data: MailingAdmin,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    if "text" not in await state.get_data() or not callback_data.value.isdigit():
        await callback.answer(texts(locale, "mailing_gone"), show_alert=True)
        return
    await callback.answer()
    choice = core.broadcasts.audience("service", service_id=int(callback_data.value))
    await _preview(callback, state, core, cache, texts, locale, choice)


async def _label(
    cache: CatalogueReader, texts: BotTexts, locale: str, choice: AudienceChoice
) -> str:
    name = ""
    if choice.service_id:
        try:
            name = (await cache.service(choice.service_id)).name
        except BookingError:
            name = ""
    return audience_label(texts, locale, choice, name)


async def _preview(
    event: CallbackQuery | Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    choice: AudienceChoice,
) -> None:
    """The mailing exactly as customers will see it, then the audience, the count and "Send"."""
    data = await state.get_data()
    label = await _label(cache, texts, locale, choice)
    count = await core.broadcasts.count(choice)
    await state.set_state(MailingFlow.confirm)
    if count == 0:
        await show(
            event,
            texts(locale, "mailing_nobody", audience=label),
            _audience_keyboard(texts, locale),
        )
        return
    await state.update_data(aud=choice.kind.value, days=choice.days, svc=choice.service_id)
    message = event.message if isinstance(event, CallbackQuery) else event
    if not isinstance(message, Message) or message.bot is None:
        return
    await send_mailing(
        message.bot,
        message.chat.id,
        text=data["text"],
        photo_file_id=data.get("photo"),
        markup=unsubscribe_keyboard(texts, locale),
    )
    rows = [
        [
            button(
                texts(locale, "btn_mailing_send", count=count),
                MailingAdmin(action="send").pack(),
            )
        ],
        _mailing_button(texts, locale, "btn_mailing_audience", "back"),
        _mailing_button(texts, locale, "btn_mailing_discard", "discard"),
    ]
    await message.answer(
        texts(locale, "mailing_confirm", audience=label, count=count),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


@routes.callback_query(MailingAdmin.filter(F.action == "send"), MailingFlow.confirm)
async def send(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    broadcaster: Broadcaster,
    texts: BotTexts,
    locale: str,
) -> None:
    """Confirm: the mailing and its recipients are written at once; its progress replaces this
    message. A second tap changes nothing (the draft's key is the mailing's)."""
    data: dict[str, Any] = await state.get_data()
    if "text" not in data or "aud" not in data:
        await callback.answer(texts(locale, "mailing_gone"), show_alert=True)
        return
    try:
        choice = core.broadcasts.audience(
            data["aud"], days=data.get("days"), service_id=data.get("svc")
        )
        mailing, created = await core.broadcasts.create(
            draft_key=data["draft"],
            text=data["text"],
            photo_file_id=data.get("photo"),
            choice=choice,
            created_by=sender_id(callback),
        )
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    await state.clear()
    await callback.answer()
    if not created:
        return
    message = callback.message
    if isinstance(message, Message):
        await core.broadcasts.show_progress_in(
            mailing.id, chat_id=message.chat.id, message_id=message.message_id
        )
        counts = await core.broadcasts.counts(mailing.id)
        label = await _label(cache, texts, locale, choice)
        await show(
            callback,
            progress_text(texts, locale, label, counts, status="sending"),
            stop_keyboard(texts, locale, mailing.id),
        )
    broadcaster.nudge(now=True)


@routes.callback_query(MailingAdmin.filter(F.action == "send"))
async def send_without_draft(callback: CallbackQuery, texts: BotTexts, locale: str) -> None:
    await callback.answer(texts(locale, "mailing_gone"), show_alert=True)


@routes.callback_query(MailingAdmin.filter(F.action == "stop"))
async def stop(
    callback: CallbackQuery,
    callback_data: MailingAdmin,
    core: BookingCore,
    broadcaster: Broadcaster,
    texts: BotTexts,
    locale: str,
) -> None:
    """Stop a mailing being sent; the report says how far it got."""
    if not callback_data.value.isdigit():
        await callback.answer(texts(locale, "stale_button"))
        return
    await core.broadcasts.cancel(int(callback_data.value))
    await callback.answer(texts(locale, "mailing_stopped"))
    broadcaster.nudge(now=True)


@routes.callback_query(MailingAdmin.filter(F.action == "discard"))
async def discard(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    await callback.answer()
    await state.clear()
    await mailings_screen(callback, core, cache, texts, locale)
