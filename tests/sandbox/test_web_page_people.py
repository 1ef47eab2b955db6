"""The sandbox web page as people use it (issue 16 item 5), in headless Chromium.

A user's language, Start on a chat never written to (in test_web_page.py), unread badges, alerts
that neither cover the chat nor stay forever, keyboards as wide as the chat, a sold bot under its
business name, an unsold demo bot that says so. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
from aiogram import Dispatcher, F, Router
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from sandbox.telegram import TelegramEmulator
from sandbox.telegram.demo import not_sold_reply
from sandbox.testing import bot_id_of, new_bot_token
from tests.support.sandbox_web import bot_messages, screenshot, waiter

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# The tenant bot's owner menu, two buttons a row, as its templates word it.
OWNER_MENU = {
    "en": [
        ["📅 Today", "📋 Tomorrow"],
        ["📆 Pick a date", "❔ Came or not?"],
        ["⛔ Blocked time", "💈 Services"],
        ["👥 Staff & hours", "⚙️ Settings"],
        ["🏷 Business profile", "📤 Export"],
    ],
    "ru": [
        ["📅 Сегодня", "📋 Завтра"],
        ["📆 Выбрать дату", "❔ Пришли или нет?"],
        ["⛔ Закрытое время", "💈 Услуги"],
        ["👥 Мастера и часы", "⚙️ Настройки"],
        ["🏷 Профиль бизнеса", "📤 Выгрузка"],
    ],
}
ALERT = "Only the owner may change the settings."


def menu_dispatcher() -> Dispatcher:
    """Any text: the owner menu in the user's language, and which language the bot was told."""
    router = Router(name="owner_menu")

    @router.message(F.text)
    async def menu(message: Message) -> None:
        language = (message.from_user.language_code if message.from_user else None) or "en"
        rows = OWNER_MENU.get(language, OWNER_MENU["en"])
        keyboard = [
            [
                InlineKeyboardButton(text=label, callback_data=f"m:{r}:{c}")
                for c, label in enumerate(row)
            ]
            for r, row in enumerate(rows)
        ]
        await message.answer(
            f"Menu · language_code={language}",
            reply_markup=InlineKeyboardMarkup(inline_keyboard=keyboard),
        )

    @router.callback_query(F.data == "m:3:1")
    async def settings(query: CallbackQuery) -> None:
        await query.answer(ALERT, show_alert=True)

    dp = Dispatcher(storage=MemoryStorage())
    dp.include_router(router)
    return dp


def control(base_url: str, method: str, path: str, **body: Any) -> Any:
    """A control-API call from the browser's thread."""
    response = httpx.request(method, f"{base_url}/sandbox{path}", json=body or None)
    response.raise_for_status()
    return response.json()


def bot_api(base_url: str, token: str, method: str, **params: Any) -> Any:
    """A Bot API call from the browser's thread, as a bot makes it."""
    response = httpx.post(f"{base_url}/bot{token}/{method}", json=params)
    response.raise_for_status()
    return response.json()["result"]


def keyboard_report(driver: WebDriver) -> dict[str, Any]:
    """The newest inline keyboard: its width against the chat's, and each button's fit."""
    return dict(
        driver.execute_script(
            """
            const kbs = document.querySelectorAll('#messages .inline-keyboard');
            const kb = kbs[kbs.length - 1];
            const list = document.getElementById('messages');
            const style = getComputedStyle(list);
            const inner = list.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight);
            return {
              width: kb.getBoundingClientRect().width,
              chat: inner,
              buttons: [...kb.querySelectorAll('.kb-button')].map((b) => ({
                text: b.innerText,
                cut: b.scrollWidth > b.clientWidth + 1 || b.scrollHeight > b.clientHeight + 1,
                ellipsis: getComputedStyle(b).textOverflow === 'ellipsis',
              })),
            };
            """
        )
    )


def language_in_browser(driver: WebDriver, *, web_url: str, base_url: str, bot_id: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    wait = waiter(driver)
    css = driver.find_element
    driver.get(web_url)
    wait(lambda d: css(By.ID, "new-user").get_attribute("open") is not None, "the new-user form")
    css(By.ID, "user-first-name").send_keys("Olga")
    css(By.ID, "user-id").send_keys("777000111")
    Select(css(By.ID, "user-form-lang")).select_by_visible_text("Русский")
    css(By.CSS_SELECTOR, "#user-form button[type=submit]").click()
    wait(lambda d: css(By.ID, "user-select").get_attribute("value") == "777000111", "the user")
    assert control(base_url, "GET", "/users/777000111")["language_code"] == "ru"
    assert Select(css(By.ID, "user-lang")).first_selected_option.text == "Русский"

    css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{bot_id}"]').click()
    wait(lambda d: css(By.ID, "start").is_displayed(), "Start")
    css(By.ID, "start").click()
    wait(lambda d: any("language_code=ru" in t for t in bot_messages(d)), "the Russian menu")
    wait(lambda d: "Пришли или нет?" in driver.page_source, "Russian buttons")
    screenshot(driver, "sandbox-web-language-ru.png")

    # The same user switches the app to English; the bot is told on the next message.
    Select(css(By.ID, "user-lang")).select_by_value("en")
    wait(lambda d: control(base_url, "GET", "/users/777000111")["language_code"] == "en", "PATCH")
    wait(lambda d: "bots see language_code" in css(By.ID, "toast-text").text, "the note")
    css(By.ID, "input").send_keys("/start", Keys.ENTER)
    wait(lambda d: any("language_code=en" in t for t in bot_messages(d)), "the English menu")
    driver.get("about:blank")


async def test_each_user_has_a_language_that_bots_see(
    browser: WebDriver, telegram_emulator: TelegramEmulator, polling_bot: Any
) -> None:
    async with polling_bot(menu_dispatcher()) as (_, bot_id):
        await asyncio.to_thread(
            language_in_browser,
            browser,
            web_url=telegram_emulator.web_url,
            base_url=telegram_emulator.base_url,
            bot_id=bot_id,
        )


def keyboards_and_alerts_in_browser(driver: WebDriver, *, web_url: str, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait = waiter(driver)
    css = driver.find_element
    bot_id = int(control(base_url, "GET", "/bots")["bots"][0]["id"])
    for language in ("en", "ru"):
        user = control(base_url, "POST", "/users", first_name="Ivan", language_code=language)
        driver.get(f"{web_url}#user={user['id']}&bot={bot_id}")
        wait(lambda d: css(By.ID, "start").is_displayed(), "Start")
        css(By.ID, "start").click()
        wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .inline-keyboard"), "the menu")
        for width, height in ((1200, 900), (390, 780)):
            driver.set_window_size(width, height)
            wait(lambda d, w=width: d.execute_script("return innerWidth") <= w, "the resize")
            report = keyboard_report(driver)
            labels = [label for row in OWNER_MENU[language] for label in row]
            assert [b["text"] for b in report["buttons"]] == labels
            cut = [b["text"] for b in report["buttons"] if b["cut"] or b["ellipsis"]]
            assert cut == [], f"labels cut at {width}px: {cut}"
            assert report["width"] >= 0.95 * min(560, report["chat"]), report
            screenshot(driver, f"sandbox-web-keyboard-{language}-{width}.png")
        driver.set_window_size(1200, 900)

    # An alert (show_alert) is a bar above the chat: it covers no message and goes on ✕.
    css(By.XPATH, "//button[contains(@class,'kb-button') and text()='⚙️ Настройки']").click()
    wait(lambda d: css(By.ID, "toast").is_displayed(), "the alert")
    assert css(By.ID, "toast-text").text == ALERT
    assert css(By.ID, "toast").get_attribute("role") == "alert"
    toast = css(By.ID, "toast").rect
    for part in (".chat-head", "#messages", ".sidebar"):
        box = css(By.CSS_SELECTOR, part).rect
        assert toast["y"] + toast["height"] <= box["y"] + 1, f"the alert covers {part}"
    screenshot(driver, "sandbox-web-alert.png")
    driver.execute_script("return new Promise((done) => setTimeout(done, 4000))")
    assert css(By.ID, "toast").is_displayed(), "an alert stays until dismissed"
    css(By.ID, "toast-ok").click()
    wait(lambda d: not css(By.ID, "toast").is_displayed(), "the alert dismissed")
    # Escape dismisses too, and a plain note (not an alert) as well.
    css(By.XPATH, "//button[contains(@class,'kb-button') and text()='⚙️ Настройки']").click()
    wait(lambda d: css(By.ID, "toast").is_displayed(), "the alert again")
    css(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(lambda d: not css(By.ID, "toast").is_displayed(), "the alert dismissed by Escape")
    driver.get("about:blank")


async def test_keyboards_use_the_chats_width_and_alerts_do_not_cover_it(
    browser: WebDriver, telegram_emulator: TelegramEmulator, polling_bot: Any
) -> None:
    async with polling_bot(menu_dispatcher()):
        await asyncio.to_thread(
            keyboards_and_alerts_in_browser,
            browser,
            web_url=telegram_emulator.web_url,
            base_url=telegram_emulator.base_url,
        )


def badges(driver: WebDriver) -> dict[int, str]:
    """The sidebar: bot id -> its badge ('' when none)."""
    script = """
        return [...document.querySelectorAll('button.bot')].map((b) => [
          Number(b.dataset.botId), b.querySelector('.tag.count')?.innerText || '']);
    """
    return {int(bot): badge for bot, badge in driver.execute_script(script)}


def unread_in_browser(
    driver: WebDriver, *, web_url: str, base_url: str, tokens: list[str], user_id: int
) -> None:
    from selenium.webdriver.common.by import By

    wait = waiter(driver)
    css = driver.find_element
    news, other = (bot_id_of(t) for t in tokens)
    driver.get(f"{web_url}#user={user_id}&bot={news}")
    wait(lambda d: css(By.ID, "start").is_displayed(), "Start")
    css(By.ID, "start").click()
    wait(lambda d: css(By.ID, "composer").is_displayed(), "the started chat")
    bot_api(base_url, tokens[0], "sendMessage", chat_id=user_id, text="Welcome!")
    wait(lambda d: any(t.startswith("Welcome!") for t in bot_messages(d)), "the welcome")
    css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{other}"]').click()
    for n in range(3):
        bot_api(base_url, tokens[0], "sendMessage", chat_id=user_id, text=f"News {n}")
    # 5 messages in the chat (the user's /start among them), 3 of them not seen yet.
    wait(lambda d: badges(d)[news] == "3", "the unread badge")
    assert badges(driver)[other] == ""
    screenshot(driver, "sandbox-web-unread.png")
    css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{news}"]').click()
    wait(lambda d: badges(d)[news] == "", "the badge gone once read")
    driver.refresh()
    wait(lambda d: news in badges(d), "the page again")
    assert badges(driver)[news] == "", "read is kept by the emulator, not the tab"
    driver.get("about:blank")


async def test_the_badge_counts_unread_messages(
    browser: WebDriver, telegram_emulator: TelegramEmulator
) -> None:
    tokens = [new_bot_token(), new_bot_token()]
    telegram_emulator.register_bot(tokens[0], username="news_bot", first_name="News")
    telegram_emulator.register_bot(tokens[1], username="quiet_bot", first_name="Quiet")
    user = telegram_emulator.create_user("Ann")
    await asyncio.to_thread(
        unread_in_browser,
        browser,
        web_url=telegram_emulator.web_url,
        base_url=telegram_emulator.base_url,
        tokens=tokens,
        user_id=user.id,
    )


def demo_bots_in_browser(
    driver: WebDriver, *, web_url: str, base_url: str, sold: str, unsold: int, user_id: int
) -> None:
    from selenium.webdriver.common.by import By

    wait = waiter(driver)
    css = driver.find_element

    def name_in_list(bot_id: int) -> str:
        return str(css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{bot_id}"] .bot-name').text)

    # Nobody runs the unsold demo bot: the emulator answers for it, in the user's language.
    driver.get(f"{web_url}#user={user_id}&bot={unsold}")
    wait(lambda d: css(By.ID, "start").is_displayed(), "Start")
    css(By.ID, "start").click()
    wait(lambda d: any("ещё не продан" in t for t in bot_messages(d)), "the not-sold reply")
    screenshot(driver, "sandbox-web-demo-unsold.png")

    # The sold one renames itself after the business (the tenant bot's setMyName): the list and the
    # header follow without a reload.
    sold_id = bot_id_of(sold)
    assert name_in_list(sold_id) == "Demo 1"
    css(By.CSS_SELECTOR, f'button.bot[data-bot-id="{sold_id}"]').click()
    bot_api(base_url, sold, "setMyName", name="Барбершоп Ивана")
    wait(lambda d: name_in_list(sold_id) == "Барбершоп Ивана", "the business name in the list")
    wait(lambda d: css(By.ID, "chat-name").text == "Барбершоп Ивана", "the name in the header")
    screenshot(driver, "sandbox-web-demo-sold.png")
    driver.get("about:blank")


async def test_a_sold_bot_shows_the_business_and_an_unsold_one_says_it_is_not_sold(
    browser: WebDriver, telegram_emulator: TelegramEmulator
) -> None:
    telegram_emulator.world.config.idle_reply_after = 0.2
    sold, unsold = new_bot_token(), new_bot_token()
    for i, token in enumerate((sold, unsold), start=1):
        telegram_emulator.register_bot(
            token,
            username=f"demo_booking_{i}_bot",
            first_name=f"Demo {i}",
            idle_reply=not_sold_reply("botfleet_sales_bot"),
        )
    user = telegram_emulator.create_user("Иван", language_code="ru")
    await asyncio.to_thread(
        demo_bots_in_browser,
        browser,
        web_url=telegram_emulator.web_url,
        base_url=telegram_emulator.base_url,
        sold=sold,
        unsold=bot_id_of(unsold),
        user_id=user.id,
    )
