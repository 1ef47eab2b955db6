"""The owner's booking links: the business's, each service's and each staff member's, each with a
printable QR code (a PNG document, so Telegram does not shrink it)."""

from __future__ import annotations

import asyncio

from aiogram import Bot, F
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup

from kit.routing import Routes
from tenant_bot.booking import CatalogueReader
from tenant_bot.callbacks import Admin, BookingLink
from tenant_bot.deep_links import LinkTarget, link, qr_png
from tenant_bot.handlers.admin.common import back_to_menu
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.texts import BotTexts

routes = Routes("admin_booking_link")


async def _name_of(target: LinkTarget, cache: CatalogueReader) -> str | None:
    """The service's or staff member's name (None: gone or switched off); "" for the business."""
    if target.kind == "b":
        return ""
    if target.kind == "s":
        return next((s.name for s in await cache.services() if s.id == target.item_id), None)
    return next(
        (m.name for m in await cache.all_staff() if m.id == target.item_id and m.active), None
    )


@routes.callback_query(Admin.filter(F.section == "link"))
async def links_menu(
    callback: CallbackQuery, bot: Bot, cache: CatalogueReader, texts: BotTexts, locale: str
) -> None:
    """The business's link, and a button per service and per staff member for theirs."""
    await callback.answer()
    me = await bot.me()
    url = link(me.username or "", LinkTarget("b"))
    rows = [[button(texts(locale, "adm_link_qr"), BookingLink(kind="b", qr=True).pack())]]
    rows += [
        [button(f"💈 {s.name}", BookingLink(kind="s", item_id=s.id).pack())]
        for s in await cache.services()
    ]
    rows += [
        [button(f"👤 {m.name}", BookingLink(kind="f", item_id=m.id).pack())]
        for m in await cache.all_staff()
        if m.active
    ]
    rows.append(back_to_menu(texts, locale))
    await show(
        callback,
        texts(locale, "adm_link_title", url=url),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


@routes.callback_query(BookingLink.filter(F.kind.in_({"b", "s", "f"})))
async def one_link(
    callback: CallbackQuery,
    callback_data: BookingLink,
    bot: Bot,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """A service's or staff member's link, or (``qr``) the QR code of any link as a PNG."""
    target = LinkTarget(callback_data.kind, callback_data.item_id)
    name = await _name_of(target, cache)
    if name is None:
        await callback.answer(texts(locale, "adm_link_gone"), show_alert=True)
        return
    await callback.answer()
    me = await bot.me()
    url = link(me.username or "", target)
    if not callback_data.qr:
        rows = [
            [
                button(
                    texts(locale, "adm_link_qr"),
                    BookingLink(kind=target.kind, item_id=target.item_id, qr=True).pack(),
                )
            ],
            back_to_menu(texts, locale, "link"),
        ]
        await show(
            callback,
            texts(locale, "adm_link_one", url=url, name=name),
            InlineKeyboardMarkup(inline_keyboard=rows),
        )
        return
    png = await asyncio.to_thread(qr_png, url)
    assert callback.message is not None
    await callback.message.answer_document(
        BufferedInputFile(png, filename=f"qr-{target.payload}.png"),
        caption=texts(locale, "adm_link_qr_caption", url=url, name=name),
    )
