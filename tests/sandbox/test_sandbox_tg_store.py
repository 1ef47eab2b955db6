"""The emulator kept in a directory: users, bots and chats outlive a restart, old updates do not."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from aiogram.types import BufferedInputFile

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.telegram.store import StoreError, WorldStore
from sandbox.testing import bot_id_of, fast_emulator_config, make_bot, new_bot_token


def _leftovers(directory: Path) -> list[Path]:
    return list(directory.rglob("*.tmp"))


async def test_users_bots_and_chats_survive_a_restart_without_old_updates(tmp_path: Path) -> None:
    token = new_bot_token()
    bot_id = bot_id_of(token)
    async with (
        TelegramEmulator.start(config=fast_emulator_config(), data_dir=tmp_path) as tg,
        TelegramSandbox(tg.base_url) as control,
    ):
        await control.register_bot(token, username="kept_bot", first_name="Kept")
        owner = await control.create_user(
            "Ivan", id=424242, language_code="ru", phone_number="+79990001122"
        )
        ivan = control.as_user(bot_id=bot_id, user_id=owner["id"])
        await ivan.send("/start")
        await ivan.send("hello")
        bot = make_bot(tg, token)
        try:
            fetched = await bot.get_updates(timeout=0)
            await bot.send_message(owner["id"], "<b>Welcome</b>, Ivan", parse_mode="HTML")
            await bot.send_document(
                owner["id"], BufferedInputFile(b"csv,1\n", filename="export.csv")
            )
            await bot.set_my_name("Barbershop Ivan")
        finally:
            await bot.session.close()
        before = await ivan.messages()
    assert [u.update_id for u in fetched] == [1, 2]  # fetched, never confirmed before the stop
    assert not _leftovers(tmp_path), "every file was renamed into place"

    async with (
        TelegramEmulator.start(config=fast_emulator_config(), data_dir=tmp_path) as tg,
        TelegramSandbox(tg.base_url) as control,
    ):
        users = (await control.state())["users"]
        assert users == [
            {
                "id": 424242,
                "is_bot": False,
                "first_name": "Ivan",
                "language_code": "ru",
                "phone_number": "+79990001122",
            }
        ]
        ivan = control.as_user(bot_id=bot_id, user_id=424242)
        after = await ivan.messages()
        assert [(m["from"], m["text"] or m["caption"]) for m in after] == [
            (m["from"], m["text"] or m["caption"]) for m in before
        ]
        assert after[2]["entities"] == [{"type": "bold", "offset": 0, "length": 7}]
        document = after[3]
        assert await ivan.download(document) == b"csv,1\n"
        assert (await control.bot(bot_id))["first_name"] == "Barbershop Ivan"
        assert tg.world.bots[bot_id].has_run, "a bot that ran gets no idle replies after a restart"
        # A new user gets a fresh id, not Ivan's.
        assert (await control.create_user("Ann"))["id"] != 424242

        bot = make_bot(tg, token)
        try:
            assert await bot.get_updates(timeout=0) == [], "no old update comes again"
            sent = await ivan.send("after the restart")
            updates = await bot.get_updates(timeout=1)
            assert [u.update_id for u in updates] == [3]
            assert updates[0].message is not None
            assert updates[0].message.from_user is not None
            assert updates[0].message.from_user.language_code == "ru"
            assert sent["message_id"] == 5, "message ids go on counting"
            answer = await bot.send_message(424242, "still here")  # the chat stays started
            assert answer.message_id == 6
        finally:
            await bot.session.close()


async def test_changes_are_saved_while_running_and_history_is_bounded(tmp_path: Path) -> None:
    token = new_bot_token()
    bot_id = bot_id_of(token)
    config = fast_emulator_config()
    config.history_limit = 3
    async with TelegramEmulator.start(config=config, data_dir=tmp_path) as tg:
        tg.register_bot(token, username="short_bot")
        user = tg.create_user("Ann")
        async with TelegramSandbox(tg.base_url) as control:
            ann = control.as_user(bot_id=bot_id, user_id=user.id)
            for n in range(5):
                await ann.send(f"message {n}")
        chat_file = tmp_path / "chats" / f"{bot_id}_{user.id}.json"
        store = tg.store
        assert store is not None
        world_file = tmp_path / "world.json"
        for _ in range(200):  # saved in the background, not only at the stop
            if (
                chat_file.exists()
                and world_file.exists()
                and len(json.loads(chat_file.read_text())["messages"]) == 3
            ):
                break
            await asyncio.sleep(0.05)
        saved = json.loads(chat_file.read_text())
        assert [m["text"] for m in saved["messages"]] == ["message 2", "message 3", "message 4"]
        assert len(tg.world.conversations[(bot_id, user.id)].messages) == 3
        assert world_file.stat().st_mode & 0o077 == 0, "tokens are kept private"


async def test_a_damaged_directory_is_refused_with_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "world.json").write_text('{"format": 1, "users": [{"nope": 1}]}')
    emulator = TelegramEmulator(data_dir=tmp_path)
    with pytest.raises(StoreError, match=str(tmp_path)):
        await emulator.serve()
    with pytest.raises(ValueError, match="history_limit"):
        WorldStore(tmp_path, history_limit=0)


async def test_a_save_cancelled_mid_write_finishes_before_the_next_one(tmp_path: Path) -> None:
    """The background save is cancelled at stop while its thread may still be writing: the stop's
    own save must not race it (a leftover temp file, or an older snapshot renamed in last)."""
    token = new_bot_token()
    async with TelegramEmulator.start(config=fast_emulator_config(), data_dir=tmp_path) as tg:
        tg.register_bot(token, username="busy_bot")
        for n in range(200):
            tg.create_user(f"User {n}")
        store = tg.store
        assert store is not None
        for _ in range(20):
            tg.create_user("One more")
            saving = asyncio.create_task(store.save(tg.world))
            for _ in range(3):
                await asyncio.sleep(0)
            saving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saving
            assert not _leftovers(tmp_path), "the cancelled save's thread had finished"
    users = json.loads((tmp_path / "world.json").read_text())["users"]
    assert len(users) == 220
