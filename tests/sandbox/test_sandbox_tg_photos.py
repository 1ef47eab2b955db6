"""Photos in the emulator, as Telegram handles them: a user sends one (several sizes, a caption with
its entities), the bot downloads it (getFile and the file server), sends it on by file_id or uploads
its own; another bot's file_id, a caption over 1024 characters, an upload over 10 MB, what is not an
image and impossible dimensions are refused with Telegram's words; a saved world keeps photos."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from aiogram.types import BufferedInputFile
from PIL import Image

from sandbox.telegram import SandboxError, TelegramEmulator, TelegramSandbox
from sandbox.telegram.images import read_image
from sandbox.testing import bot_id_of, fast_emulator_config, make_bot, new_bot_token


def picture(width: int, height: int, kind: str = "JPEG") -> bytes:
    """A real image file made by Pillow (a gradient, so the encoder has something to encode)."""
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 7) % 256, (y * 5) % 256, 90) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


async def _bot(sandbox: TelegramSandbox, name: str) -> tuple[str, int]:
    token = new_bot_token()
    await sandbox.register_bot(token, username=f"{name}{bot_id_of(token)}_bot")
    return token, bot_id_of(token)


@pytest.mark.parametrize("kind", ["JPEG", "progressive JPEG", "PNG", "GIF", "WEBP"])
def test_image_headers_give_the_size(kind: str) -> None:
    if kind == "progressive JPEG":
        out = io.BytesIO()
        Image.open(io.BytesIO(picture(1000, 600))).save(out, "JPEG", progressive=True)
        data = out.getvalue()
    else:
        data = picture(1000, 600, kind)
    info = read_image(data)
    assert info is not None and (info.width, info.height) == (1000, 600)
    assert info.sizes() == [(90, 54), (320, 192), (800, 480), (1000, 600)]
    assert read_image(b"%PDF-1.4 not an image") is None


async def test_user_photo_reaches_the_bot_in_sizes_and_comes_back(
    telegram_emulator: TelegramEmulator, telegram_sandbox: TelegramSandbox
) -> None:
    token, bot_id = await _bot(telegram_sandbox, "photo")
    ann = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
    data = picture(1600, 1200)
    bold = [{"type": "bold", "offset": 0, "length": 6}]
    sent = await ann.send_photo(data, caption="Spring sale at shop.example", caption_entities=bold)
    assert sent["from"] == "user" and sent["caption"] == "Spring sale at shop.example"
    assert [(s["width"], s["height"]) for s in sent["photo"]["sizes"]] == [
        (90, 68),
        (320, 240),
        (800, 600),
        (1280, 960),
    ]
    bot = make_bot(telegram_emulator, token)
    try:
        [update] = await bot.get_updates(timeout=0)
        message = update.message
        assert message is not None and message.photo is not None
        assert [p.width for p in message.photo] == [90, 320, 800, 1280]
        assert len({p.file_id for p in message.photo}) == 4
        assert len({p.file_unique_id for p in message.photo}) == 4
        assert all(p.file_size == len(data) for p in message.photo)
        assert message.caption == "Spring sale at shop.example"
        assert message.html_text == "<b>Spring</b> sale at shop.example"
        # aiogram downloads through getFile and /file/bot<token>/<file_path>: any size
        for size in (message.photo[0], message.photo[-1]):
            file = await bot.get_file(size.file_id)
            assert file.file_id == size.file_id and file.file_path
            downloaded = await bot.download(size.file_id)
            assert downloaded is not None and downloaded.read() == data
        # the bot sends it on by file_id (even a smaller size's): the whole photo, a new caption
        await bot.send_message(ann.id, "Preview:")
        again = await bot.send_photo(
            ann.id, message.photo[1].file_id, caption="<i>Preview</i>", parse_mode="HTML"
        )
        assert again.photo is not None and [p.file_id for p in again.photo] == [
            p.file_id for p in message.photo
        ]
    finally:
        await bot.session.close()
    shown = await ann.last_message()
    assert shown is not None and shown["caption"] == "Preview"
    assert shown["caption_entities"] == [{"offset": 0, "length": 7, "type": "italic"}]
    assert (shown["photo"]["width"], shown["photo"]["height"]) == (1280, 960)
    assert await ann.download(shown) == data


async def test_file_ids_belong_to_one_bot_and_photos_are_checked(
    telegram_emulator: TelegramEmulator, telegram_sandbox: TelegramSandbox
) -> None:
    token, bot_id = await _bot(telegram_sandbox, "own")
    other_token, other_id = await _bot(telegram_sandbox, "other")
    ann = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
    received = await ann.send_photo(picture(300, 200))
    file_id = received["photo"]["sizes"][-1]["file_id"]
    await telegram_sandbox.as_user(bot_id=other_id, user_id=ann.id).send("/start")
    base = telegram_emulator.base_url
    async with httpx.AsyncClient(base_url=f"{base}/bot{other_token}/") as other:
        refused = await other.post("sendPhoto", json={"chat_id": ann.id, "photo": file_id})
        assert refused.status_code == 400
        assert refused.json()["description"] == (
            "Bad Request: wrong file identifier/HTTP URL specified"
        )
        assert (await other.post("getFile", json={"file_id": file_id})).json()[
            "description"
        ] == "Bad Request: invalid file_id"
    async with httpx.AsyncClient(base_url=f"{base}/bot{token}/") as own:
        path = (await own.post("getFile", json={"file_id": file_id})).json()["result"]["file_path"]
        async with httpx.AsyncClient() as raw:
            assert (await raw.get(f"{base}/file/bot{token}/{path}")).status_code == 200
            assert (await raw.get(f"{base}/file/bot{other_token}/{path}")).status_code == 404

        async def send(photo: tuple[str, bytes, str], **fields: str) -> httpx.Response:
            return await own.post(
                "sendPhoto",
                data={"chat_id": str(ann.id), "photo": "attach://p", **fields},
                files={"p": photo},
            )

        png = picture(640, 480, "PNG")
        uploaded = await send(("menu.png", png, "image/png"), caption="<b>" + "x" * 1024 + "</b>")
        assert uploaded.status_code == 400  # no parse_mode: the tags count
        uploaded = await send(
            ("menu.png", png, "image/png"), caption="<b>" + "x" * 1024 + "</b>", parse_mode="HTML"
        )
        assert uploaded.is_success, uploaded.text  # 1024 after entity parsing
        photo = uploaded.json()["result"]["photo"]
        assert [(p["width"], p["height"]) for p in photo] == [(90, 68), (320, 240), (640, 480)]
        too_long = await send(("menu.png", png, "image/png"), caption="x" * 1025)
        assert too_long.json()["description"] == "Bad Request: message caption is too long"
        not_image = await send(("menu.png", b"<html>not a picture</html>", "image/png"))
        assert not_image.json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"
        huge = png + b"\0" * (10 * 1024 * 1024 + 1 - len(png))
        assert (await send(("big.png", huge, "image/png"))).json()[
            "description"
        ] == "Bad Request: PHOTO_SAVE_FILE_INVALID"
        narrow = await send(("strip.png", picture(2100, 100, "PNG"), "image/png"))
        assert narrow.json()["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS"
        document = await own.post(
            "sendDocument",
            data={"chat_id": str(ann.id), "document": "attach://d"},
            files={"d": ("price.pdf", b"%PDF-1.4", "application/pdf")},
        )
        doc_id = document.json()["result"]["document"]["file_id"]
        mismatch = await own.post("sendPhoto", json={"chat_id": ann.id, "photo": doc_id})
        assert mismatch.json()["description"] == "Bad Request: type of file mismatch"
    [shown] = [m for m in await ann.messages() if m["from"] == "bot" and m["photo"]]
    assert shown["caption"] == "x" * 1024 and shown["photo"]["width"] == 640


async def test_a_user_cannot_send_what_is_not_a_photo(telegram_sandbox: TelegramSandbox) -> None:
    _, bot_id = await _bot(telegram_sandbox, "picky")
    ann = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
    with pytest.raises(SandboxError, match="IMAGE_PROCESS_FAILED"):
        await ann.send_photo(b"plain text")
    with pytest.raises(SandboxError, match="longer than 4096"):
        await ann.send_photo(picture(100, 100), caption="y" * 4097)
    with pytest.raises(SandboxError, match="outside the caption"):
        await ann.send_photo(
            picture(100, 100),
            caption="hi",
            caption_entities=[{"type": "bold", "offset": 0, "length": 3}],
        )
    with pytest.raises(SandboxError, match="base64"):
        await telegram_sandbox.request(
            "POST", f"/chats/{bot_id}/{ann.id}/photo", json={"data_base64": "%%%"}
        )
    long_caption = await ann.send_photo(picture(100, 100), caption="z" * 2000)  # as Premium may
    assert len(long_caption["caption"]) == 2000 and long_caption["photo"]["width"] == 100


async def test_photos_survive_a_restart_with_their_sizes_and_owner(tmp_path: Path) -> None:
    token = new_bot_token()
    bot_id = bot_id_of(token)
    data = picture(900, 900)
    async with (
        TelegramEmulator.start(config=fast_emulator_config(), data_dir=tmp_path) as tg,
        TelegramSandbox(tg.base_url) as control,
    ):
        await control.register_bot(token, username="keeps_photos_bot")
        ann = await control.user(bot_id=bot_id, first_name="Ann")
        sent = await ann.send_photo(data, caption="kept")
        bot = make_bot(tg, token)
        try:
            await bot.send_photo(ann.id, BufferedInputFile(data, filename="reply.jpg"))
        finally:
            await bot.session.close()
    async with (
        TelegramEmulator.start(config=fast_emulator_config(), data_dir=tmp_path) as tg,
        TelegramSandbox(tg.base_url) as control,
    ):
        ann = control.as_user(bot_id=bot_id, user_id=ann.id)
        first, reply = await ann.messages()
        assert first["caption"] == "kept" and first["photo"]["sizes"] == sent["photo"]["sizes"]
        assert await ann.download(reply) == data
        bot = make_bot(tg, token)
        try:
            small = sent["photo"]["sizes"][0]["file_id"]
            again = await bot.send_photo(ann.id, small)  # a smaller size's id still works
            assert again.photo is not None and again.photo[-1].width == 900
        finally:
            await bot.session.close()
