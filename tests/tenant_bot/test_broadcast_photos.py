"""Photo mailings end to end through the emulator.

The owner sends a real photo with a caption in /admin → Mailings; the preview is the photo with its
caption and the unsubscribe button; after "Send" every subscribed customer gets the photo with the
caption, the one who opted out gets nothing and the report counts right. A photo Telegram refuses
for one customer is set aside and counted without stopping the mailing; a file_id Telegram refuses
for everyone (another bot's) fails each customer, counted, and the report still comes. A caption
longer than Telegram lets a bot send under a photo (1024, while a text may have 4096) is refused
before anything is sent, with what to do; a photo without a caption goes out as it is.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from sandbox.testing import bot_id_of, new_bot_token
from tests.support.chat_helpers import bot_view, say, settle, tap

CAPTION = "Spring offer: 20% off every haircut this week!"
UNSUBSCRIBE = "🔕 Unsubscribe from mailings"


def photo_bytes(width: int = 800, height: int = 600) -> bytes:
    """A real JPEG, as a phone would send."""
    image = Image.new("RGB", (width, height), (200, 120, 40))
    image.putdata(
        [((x * 3) % 256, (y * 2) % 256, 120) for y in range(height) for x in range(width)]
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


async def send_photo(user: TelegramUser, data: bytes, **fields: Any) -> dict[str, Any]:
    """Send a photo and return the bot's newest message once it answered and settled."""
    before = await bot_view(user)
    await user.send_photo(data, **fields)
    return await settle(user, before)


async def customers(tenant: Any, emulator: TelegramEmulator, bot_id: int, n: int) -> list[int]:
    """Customers who once wrote to the bot (so it may write to them) and are in its database."""
    world = emulator.world
    ids = []
    for i in range(n):
        user = world.create_user(first_name=f"C{i}", language_code="en")
        world.conversation(world.bot(bot_id), user).started = True
        await tenant.core.customers.register(user.id, name=f"C{i}", locale="en")
        ids.append(user.id)
    return ids


def photos_received(emulator: TelegramEmulator, bot_id: int, user_id: int) -> list[Any]:
    conv = emulator.world.conversations[(bot_id, user_id)]
    return [m for m in conv.visible() if m.from_bot and m.photo is not None]


async def report(owner: TelegramUser) -> str:
    message = await owner.wait_for_bot_message(
        lambda m: "Mailing finished" in (m["text"] or ""), timeout=30
    )
    return str(message["text"])


async def open_new_mailing(owner: TelegramUser) -> None:
    await say(owner, "/admin")
    await tap(owner, "📣 Mailings")
    await tap(owner, "✉️ New mailing")


async def test_photo_mailing_reaches_each_subscriber_once_and_a_refusal_is_counted(
    start_bot, tenant, emulator: TelegramEmulator, sandbox: TelegramSandbox
) -> None:
    bot = await start_bot()
    owner = bot.owner
    ids = await customers(tenant, emulator, bot.bot_id, 4)
    opted_out = ids[3]
    assert await tenant.core.broadcasts.opt_out(opted_out)
    data = photo_bytes()

    await open_new_mailing(owner)
    bold = [{"type": "bold", "offset": 0, "length": 12}]
    asked = await send_photo(owner, data, caption=CAPTION, caption_entities=bold)
    assert asked["text"] == "Who should get it?"
    confirm = await tap(owner, "👥 All customers")
    assert "Recipients: 3" in confirm["text"]
    preview = [m for m in await owner.messages() if m["from"] == "bot"][-2]
    assert preview["photo"] is not None and preview["text"] is None
    assert preview["caption"] == CAPTION  # as customers will see it: the caption, its bold,
    assert preview["caption_entities"] == [{"offset": 0, "length": 12, "type": "bold"}]
    assert preview["inline_keyboard"][0][0]["text"] == UNSUBSCRIBE  # and the button
    assert await owner.download(preview) == data

    # Telegram refuses the photo for one customer: set aside, counted, the mailing goes on
    await sandbox.inject_fault(
        bot.bot_id,
        method="sendPhoto",
        error_code=400,
        description="Bad Request: wrong file identifier/HTTP URL specified",
    )
    await tap(owner, "📣 Send to 3")
    text = await report(owner)
    assert "Sent: 2 of 3" in text
    assert "Failed: 1" in text
    assert "Blocked the bot: 0" in text

    got = {user_id: photos_received(emulator, bot.bot_id, user_id) for user_id in ids}
    assert got[opted_out] == []
    assert sorted(len(messages) for user_id, messages in got.items() if user_id != opted_out) == [
        0,
        1,
        1,
    ]
    for messages in got.values():
        for message in messages:
            assert message.caption == CAPTION
            assert message.caption_entities == [{"offset": 0, "length": 12, "type": "bold"}]
            assert message.photo.data == data
            assert message.inline_keyboard[0][0]["text"] == UNSUBSCRIBE
    mailing = (await tenant.core.broadcasts.recent(limit=1))[0][0]
    counts = await tenant.core.broadcasts.counts(mailing.id)
    assert (counts.sent, counts.blocked, counts.failed, counts.skipped) == (2, 0, 1, 0)
    assert bot.resources.broadcaster.notifier.tally.failed["mailing"] == 1


async def test_a_photo_without_caption_is_sent_as_it_is(
    start_bot, tenant, emulator: TelegramEmulator
) -> None:
    bot = await start_bot()
    owner = bot.owner
    ids = await customers(tenant, emulator, bot.bot_id, 2)
    data = photo_bytes(640, 640)

    await open_new_mailing(owner)
    await send_photo(owner, data)
    confirm = await tap(owner, "👥 All customers")
    assert "Recipients: 2" in confirm["text"]
    preview = [m for m in await owner.messages() if m["from"] == "bot"][-2]
    assert preview["photo"] is not None and preview["caption"] is None
    await tap(owner, "📣 Send to 2")
    text = await report(owner)
    assert "Sent: 2 of 2" in text and "Failed: 0" in text
    for user_id in ids:
        [message] = photos_received(emulator, bot.bot_id, user_id)
        assert message.caption is None and message.photo.data == data


async def test_a_caption_too_long_for_a_photo_is_refused_before_sending(
    start_bot, tenant, emulator: TelegramEmulator
) -> None:
    bot = await start_bot()
    owner = bot.owner
    [customer] = await customers(tenant, emulator, bot.bot_id, 1)
    data = photo_bytes(320, 240)

    await open_new_mailing(owner)
    # 1020 characters to Python, 1040 to Telegram: each emoji counts two (UTF-16)
    long_caption = "x" * 1000 + "😀" * 20
    refused = await send_photo(owner, data, caption=long_caption)
    assert "1040 characters" in refused["text"]
    assert "at most 1024 under a photo" in refused["text"]
    assert "up to 4096" in refused["text"]
    assert "with a caption of at most 1024 characters" in refused["text"]
    assert "send the text alone as a text mailing" in refused["text"]
    assert not any(m["photo"] for m in await owner.messages() if m["from"] == "bot")
    assert await tenant.core.broadcasts.recent(limit=1) == []

    # still at the first step: the shortened caption is taken
    await send_photo(owner, data, caption="x" * 1000 + "😀" * 12)  # 1024 exactly
    confirm = await tap(owner, "👥 All customers")
    assert "Recipients: 1" in confirm["text"]
    await tap(owner, "📣 Send to 1")
    assert "Sent: 1 of 1" in await report(owner)
    [message] = photos_received(emulator, bot.bot_id, customer)
    assert message.caption == "x" * 1000 + "😀" * 12


async def test_another_bots_file_id_fails_each_customer_and_the_report_comes(
    start_bot, tenant, emulator: TelegramEmulator, sandbox: TelegramSandbox
) -> None:
    """A mailing confirmed with a photo the bot cannot send (its file_id belongs to another bot,
    as after the owner moved the business to a new bot): every customer is set aside, counted."""
    bot = await start_bot()
    await say(bot.owner, "/admin")  # the owner has used the bot: it may write to them
    ids = await customers(tenant, emulator, bot.bot_id, 3)
    other_token = new_bot_token()
    await sandbox.register_bot(other_token, username=f"other{bot_id_of(other_token)}_bot")
    stranger = await sandbox.user(bot_id=bot_id_of(other_token), first_name="Stranger")
    foreign = (await stranger.send_photo(photo_bytes(100, 100)))["photo"]["file_id"]

    broadcasts = tenant.core.broadcasts
    mailing, created = await broadcasts.create(
        draft_key="moved-bot",
        text=CAPTION,
        photo_file_id=foreign,
        choice=broadcasts.audience("all"),
        created_by=bot.owner.id,
    )
    assert created
    bot.resources.broadcaster.nudge(now=True)
    text = await report(bot.owner)
    assert "Sent: 0 of 3" in text and "Failed: 3" in text
    counts = await broadcasts.counts(mailing.id)
    assert (counts.sent, counts.failed) == (0, 3)
    for user_id in ids:
        assert photos_received(emulator, bot.bot_id, user_id) == []
    assert bot.resources.broadcaster.notifier.tally.failed["mailing"] == 3
