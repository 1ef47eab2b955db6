"""Photos on the sandbox web page, in headless Chromium: the person attaches a picture (📎) with
the text typed as its caption; the bot gets it as Telegram delivers photos and sends it back by
file_id with a caption of its own; both show in the chat as pictures with their captions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher, F, Router
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Message
from PIL import Image

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from tests.support.sandbox_web import bot_messages, screenshot, waiter

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def echo_dispatcher() -> Dispatcher:
    """A photo: the same photo back by file_id, captioned with what the bot received."""
    router = Router(name="photo_echo")

    @router.message(F.photo)
    async def echo(message: Message) -> None:
        assert message.photo is not None
        largest = message.photo[-1]
        await message.answer_photo(
            largest.file_id,
            caption=f"Got {largest.width}x{largest.height}: {message.caption or 'no caption'}",
        )

    dispatcher = Dispatcher(storage=MemoryStorage())
    dispatcher.include_router(router)
    return dispatcher


def send_photo_in_browser(driver: WebDriver, *, url: str, picture: Path) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    wait = waiter(driver)
    driver.get(url)
    box = wait(lambda d: d.find_element(By.ID, "input"), "the input")
    wait(lambda d: box.is_displayed(), "the chat")
    box.send_keys("Our new interior")
    driver.find_element(By.ID, "photo-file").send_keys(str(picture))
    wait(lambda d: any(t.startswith("Got 640x480") for t in bot_messages(d)), "the bot's photo")
    sent = driver.find_element(By.CSS_SELECTOR, ".from-user img.photo")
    got = driver.find_element(By.CSS_SELECTOR, ".from-bot img.photo")
    loaded = "return arguments[0].complete && arguments[0].naturalWidth"
    wait(lambda d: d.execute_script(loaded, got), "the picture loaded")
    seen = {
        "user_caption": driver.find_elements(By.CSS_SELECTOR, ".from-user .text")[-1].text,
        "bot_text": bot_messages(driver)[-1],
        "natural_width": driver.execute_script(loaded, sent),
        "input_left": box.get_attribute("value"),
    }
    screenshot(driver, "sandbox-web-photo.png")
    driver.get("about:blank")  # end the page's long poll before the emulator stops
    return seen


async def test_a_photo_sent_from_the_page_and_one_received(
    browser: WebDriver,
    telegram_emulator: TelegramEmulator,
    telegram_sandbox: TelegramSandbox,
    polling_bot: Any,
    tmp_path: Path,
) -> None:
    picture = tmp_path / "interior.png"
    Image.new("RGB", (640, 480), (30, 140, 200)).save(picture)
    async with polling_bot(echo_dispatcher()) as (_, bot_id):
        ann = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
        await ann.send("/start")
        url = f"{telegram_emulator.web_url}#user={ann.id}&bot={bot_id}"
        seen = await asyncio.to_thread(send_photo_in_browser, browser, url=url, picture=picture)
        messages = await ann.messages()
    assert seen["user_caption"] == "Our new interior"
    assert seen["bot_text"].startswith("Got 640x480: Our new interior\n")
    assert seen["natural_width"] == 640
    assert seen["input_left"] == ""  # the caption went with the photo
    user_photo, bot_photo = [m for m in messages if m["photo"]]
    assert user_photo["from"] == "user" and user_photo["caption"] == "Our new interior"
    assert bot_photo["photo"]["file_id"] == user_photo["photo"]["file_id"]
    assert await ann.download(bot_photo) == picture.read_bytes()
    assert await ann.download(user_photo) == picture.read_bytes()
