"""The sandbox web page: served by the emulator, and driven in headless Chromium.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (or ``CHROMIUM_BIN`` and
``CHROMEDRIVER_BIN``) and the ``selenium`` package; they skip, with the reason, when any is missing.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from typing import TYPE_CHECKING, Any

import httpx
from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import CommandStart
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.yookassa import YooKassaStandIn
from tests.support.sandbox_web import ARTIFACTS, bot_messages, waiter

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
RECEIPT = b"receipt 42\nplan: Basic\n"


# ----- HTTP level -------------------------------------------------------------------------------


async def test_page_and_assets_are_served(telegram_emulator: TelegramEmulator) -> None:
    assert telegram_emulator.web_url == telegram_emulator.base_url + "/"
    async with httpx.AsyncClient(base_url=telegram_emulator.base_url) as http:
        page = await http.get("/")
        script = await http.get("/web/app.js")
        style = await http.get("/web/app.css")
        missing = await http.get("/web/secrets.py")
        escape = await http.get("/web/..%2F__init__.py")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/web/app.js" defer></script>' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "renderText" in script.text
    assert style.status_code == 200
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert missing.status_code == 404
    assert escape.status_code == 404


async def test_world_wait_wakes_when_a_bot_or_user_appears(
    telegram_emulator: TelegramEmulator, telegram_sandbox: TelegramSandbox
) -> None:
    async with httpx.AsyncClient(base_url=telegram_emulator.base_url + "/sandbox") as http:
        version = (await http.get("/state")).json()["version"]
        waiting = asyncio.create_task(http.get("/wait", params={"version": version, "timeout": 5}))
        await asyncio.sleep(0.05)
        await telegram_sandbox.register_bot("777000:abcdefgh-token", username="fresh_bot")
        woke = (await waiting).json()
        assert woke["changed"] is True and woke["version"] > version
        idle = await http.get("/wait", params={"version": woke["version"], "timeout": 0.05})
        assert idle.json() == {"changed": False, "version": woke["version"]}
        bad = await http.get("/wait", params={"version": "x"})
        assert bad.status_code == 400


# ----- a small real bot -------------------------------------------------------------------------


def build_dispatcher(pay_url: str) -> Dispatcher:
    """/start with formatting, an inline keyboard (callback + pay link) and a contact request."""
    router = Router(name="web_demo")
    pay_button = InlineKeyboardButton(text="Pay 990 ₽", url=pay_url)

    @router.message(CommandStart())
    async def start(message: Message, bot: Bot) -> None:
        await bot.set_my_commands([BotCommand(command="start", description="Start over")])
        name = html.escape(message.from_user.first_name if message.from_user else "")
        await message.answer(
            f"<b>Welcome</b>, <i>{name}</i>! <tg-spoiler>secret</tg-spoiler>\n"
            "<blockquote>Open <u>daily</u> <s>9</s> <b>10<i>–19</i></b></blockquote>"
            '<pre><code class="language-text">slots: 10:00, 11:00</code></pre>'
            '<a href="https://example.org/">site</a> · <a href="javascript:alert(1)">trap</a>',
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text="Book 10:00", callback_data="book:10:00")],
                    [pay_button],
                ]
            ),
        )
        await message.answer(
            "Share your phone to confirm.",
            reply_markup=ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text="Share phone", request_contact=True)]],
                resize_keyboard=True,
            ),
        )

    @router.callback_query(F.data.startswith("book:"))
    async def book(query: CallbackQuery) -> None:
        slot = (query.data or "").removeprefix("book:")
        await query.answer(f"Booked {slot}")
        assert isinstance(query.message, Message)
        await query.message.edit_text(
            f"<b>Booked</b> for {slot}",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[pay_button]]),
        )

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None
        await message.answer(
            f"Got {message.contact.phone_number}", reply_markup=ReplyKeyboardRemove()
        )
        await message.answer_document(
            BufferedInputFile(RECEIPT, filename="receipt.txt"), caption="Your receipt"
        )

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"You said: {html.escape(message.text or '')}", parse_mode="HTML")

    dp = Dispatcher(storage=MemoryStorage())
    dp.include_router(router)
    return dp


async def create_payment(yk: YooKassaStandIn, *, return_url: str) -> dict[str, Any]:
    """A pending 990 RUB payment through the stand-in's API v3."""
    async with httpx.AsyncClient(auth=(yk.shop_id, yk.secret_key)) as http:
        response = await http.post(
            yk.api_url + "/payments",
            headers={"Idempotence-Key": uuid.uuid4().hex},
            json={
                "amount": {"value": "990.00", "currency": "RUB"},
                "confirmation": {"type": "redirect", "return_url": return_url},
                "capture": True,
                "description": "Plan Basic, 1 month",
            },
        )
    response.raise_for_status()
    return response.json()


async def payment_status(yk: YooKassaStandIn, payment_id: str) -> str:
    """The payment's status as the API reports it."""
    async with httpx.AsyncClient(auth=(yk.shop_id, yk.secret_key)) as http:
        response = await http.get(f"{yk.api_url}/payments/{payment_id}")
    return str(response.json()["status"])


# ----- headless Chromium ------------------------------------------------------------------------


def chat_in_browser(driver: WebDriver, *, web_url: str, bot_id: int) -> dict[str, Any]:
    """The person's side, run in a thread: create a user, chat, pay. Returns what it saw."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait = waiter(driver)
    css = driver.find_element
    seen: dict[str, Any] = {}
    driver.get(web_url)

    # A new user, then the bot from the list (it registered before the page opened).
    wait(lambda d: css(By.ID, "new-user").get_attribute("open") is not None, "the new-user form")
    css(By.ID, "user-first-name").send_keys("Ann <b>")
    css(By.ID, "user-id").send_keys("555000111")
    css(By.ID, "user-phone").send_keys("+79990001122")
    css(By.CSS_SELECTOR, "#user-form button[type=submit]").click()
    wait(lambda d: css(By.ID, "user-select").get_attribute("value") == "555000111", "the user")
    # The list follows registrations live (a tenant bot going live while the page is open).
    late = {"token": "990011:late-bot-token", "username": "late_tenant_bot", "first_name": "Late"}
    httpx.post(web_url + "sandbox/bots", json=late).raise_for_status()
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, 'button.bot[data-bot-id="990011"]'), "new bot")
    css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{bot_id}"]').click()

    # A bot never written to shows Start instead of the input, as Telegram does.
    wait(lambda d: css(By.ID, "start").is_displayed(), "the Start button")
    assert not css(By.ID, "composer").is_displayed()
    driver.save_screenshot(str(ARTIFACTS / "sandbox-web-start-button.png"))
    css(By.ID, "start").click()
    wait(lambda d: css(By.ID, "composer").is_displayed(), "the input after Start")
    assert not css(By.ID, "start-bar").is_displayed()
    assert css(By.CSS_SELECTOR, ".from-user .text").text == "/start"
    box = css(By.ID, "input")

    # /start's answer: formatting from entities, with the javascript: link defused.
    wait(lambda d: any("Welcome" in t for t in bot_messages(d)), "the welcome message")
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#reply-keyboard .kb-button"), "reply kb")
    welcome = css(By.CSS_SELECTOR, ".from-bot .text")
    assert welcome.find_element(By.TAG_NAME, "b").text == "Welcome"
    assert welcome.find_element(By.TAG_NAME, "i").text == "Ann <b>"
    assert welcome.find_element(By.TAG_NAME, "tg-spoiler").get_attribute("textContent") == "secret"
    quote = welcome.find_element(By.TAG_NAME, "blockquote")
    assert quote.find_element(By.TAG_NAME, "u").text == "daily"
    assert quote.find_element(By.TAG_NAME, "s").text == "9"
    assert quote.find_element(By.CSS_SELECTOR, "b > i").text == "–19", "nested entities"
    pre = welcome.find_element(By.TAG_NAME, "pre")
    assert pre.text == "slots: 10:00, 11:00"
    assert pre.get_attribute("data-language") == "text"
    site = welcome.find_element(By.LINK_TEXT, "site")
    assert site.get_attribute("href") == "https://example.org/"
    assert site.get_attribute("target") == "_blank"
    assert welcome.find_element(By.CSS_SELECTOR, ".bad-link").text == "trap"
    assert not driver.find_elements(By.CSS_SELECTOR, '.messages a[href^="javascript"]')
    assert not css(By.ID, "menu").get_attribute("hidden"), "the / commands button is shown"
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "sandbox-web-start.png"))

    # The inline button: a toast with the callback answer, and the message edited in place.
    css(By.XPATH, "//button[contains(@class,'kb-button') and text()='Book 10:00']").click()
    wait(lambda d: css(By.ID, "toast-text").text == "Booked 10:00", "the callback answer")
    wait(lambda d: any(t.startswith("Booked for 10:00") for t in bot_messages(d)), "the edit")
    edited = css(By.XPATH, "//li[contains(@class,'from-bot')][.//b[text()='Booked']]")
    assert "edited" in edited.find_element(By.CLASS_NAME, "meta").text
    buttons = [b.text for b in edited.find_elements(By.CLASS_NAME, "kb-button")]
    assert buttons == ["Pay 990 ₽"], "the edit replaced the keyboard"

    # The request_contact button: a dialog with the user's phone, changed by the person.
    css(By.CSS_SELECTOR, "#reply-keyboard .kb-button.contact").click()
    phone = css(By.ID, "contact-phone")
    wait(lambda d: phone.is_displayed(), "the contact dialog")
    assert phone.get_attribute("value") == "+79990001122"
    phone.clear()
    phone.send_keys("+79995554433")
    css(By.ID, "contact-share").click()
    wait(lambda d: any("Got +79995554433" in t for t in bot_messages(d)), "the contact reply")
    wait(lambda d: not css(By.ID, "reply-keyboard").is_displayed(), "the keyboard removed")
    document = wait(lambda d: d.find_elements(By.CSS_SELECTOR, "a.document"), "the document")[0]
    assert document.get_attribute("download") == "receipt.txt"
    seen["document_url"] = document.get_attribute("href")

    # Untrusted text from the user comes back from the bot as text, never as markup.
    box.send_keys(XSS, Keys.ENTER)
    wait(lambda d: any(t.startswith("You said: <img") for t in bot_messages(d)), "the echo")
    assert driver.execute_script("return window.__xss") is None
    assert not driver.find_elements(By.CSS_SELECTOR, ".messages img, .messages script")

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], "the page logged errors"

    driver.save_screenshot(str(ARTIFACTS / "sandbox-web-chat.png"))

    # Block and unblock from the header.
    css(By.ID, "block").click()
    wait(lambda d: css(By.ID, "blocked-note").is_displayed(), "the blocked note")
    assert css(By.ID, "block").text == "Unblock"
    css(By.ID, "block").click()
    wait(lambda d: css(By.ID, "block").text == "Block", "unblocked")

    # Phone width: the chat alone, with a back button to the list.
    driver.set_window_size(390, 780)
    wait(lambda d: css(By.ID, "back").is_displayed(), "the back button")
    driver.save_screenshot(str(ARTIFACTS / "sandbox-web-phone.png"))
    css(By.ID, "back").click()
    wait(lambda d: css(By.ID, "bot-list").is_displayed(), "the bot list on a phone")
    driver.set_window_size(1200, 900)

    # The pay link opens the YooKassa checkout in a new tab; Pay returns to return_url.
    css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{bot_id}"]').click()
    chat_tab = driver.current_window_handle
    pay = wait(lambda d: d.find_elements(By.PARTIAL_LINK_TEXT, "Pay 990"), "the pay link")[0]
    assert pay.get_attribute("target") == "_blank"
    pay.click()
    wait(lambda d: len(d.window_handles) == 2, "the checkout tab")
    driver.switch_to.window(next(h for h in driver.window_handles if h != chat_tab))
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, "button.pay"), "the checkout page")
    assert "990.00 RUB" in css(By.CLASS_NAME, "amount").text
    css(By.CSS_SELECTOR, "button.pay").click()
    wait(lambda d: d.current_url.startswith(web_url), "the redirect to return_url")
    # The return URL names no chat: the tab opens the chat the payer left for the checkout.
    wait(
        lambda d: "user=555000111" in d.current_url and f"bot={bot_id}" in d.current_url,
        "the paying user's chat in the return tab",
    )
    wait(lambda d: any("Booked for 10:00" in t for t in bot_messages(d)), "the chat's messages")
    assert css(By.ID, "user-select").get_attribute("value") == "555000111"
    driver.save_screenshot(str(ARTIFACTS / "sandbox-web-return.png"))
    driver.close()
    driver.switch_to.window(chat_tab)
    driver.get("about:blank")  # end the page's long poll before the emulator stops
    return seen


async def test_chat_with_a_bot_in_the_browser(
    browser: WebDriver,
    telegram_emulator: TelegramEmulator,
    yookassa_standin: YooKassaStandIn,
    polling_bot: Any,
) -> None:
    payment = await create_payment(yookassa_standin, return_url=telegram_emulator.web_url)
    pay_url = payment["confirmation"]["confirmation_url"]
    async with polling_bot(build_dispatcher(pay_url)) as (_, bot_id):
        seen = await asyncio.to_thread(
            chat_in_browser, browser, web_url=telegram_emulator.web_url, bot_id=bot_id
        )
    async with httpx.AsyncClient() as http:
        receipt = await http.get(seen["document_url"])
    assert receipt.content == RECEIPT
    assert "receipt.txt" in receipt.headers["content-disposition"]
    assert await payment_status(yookassa_standin, payment["id"]) == "succeeded"
    assert (ARTIFACTS / "sandbox-web-chat.png").stat().st_size > 10_000


def cancel_in_browser(driver: WebDriver, *, url: str, return_url: str) -> None:
    """Open a checkout page and press Cancel; it sends the payer back to ``return_url``."""
    from selenium.webdriver.common.by import By

    wait = waiter(driver)
    driver.get(url)
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, "button.cancel"), "the Cancel button")
    assert driver.find_element(By.ID, "status").text == "pending"
    driver.find_element(By.CSS_SELECTOR, "button.cancel").click()
    wait(lambda d: d.current_url == return_url, "the redirect to return_url")


async def test_checkout_page_cancel_in_the_browser(
    browser: WebDriver, yookassa_standin: YooKassaStandIn
) -> None:
    return_url = yookassa_standin.base_url + "/sandbox/health"
    payment = await create_payment(yookassa_standin, return_url=return_url)
    url = payment["confirmation"]["confirmation_url"]
    await asyncio.to_thread(cancel_in_browser, browser, url=url, return_url=return_url)
    assert await payment_status(yookassa_standin, payment["id"]) == "canceled"
