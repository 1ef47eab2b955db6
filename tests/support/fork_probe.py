"""An entry point a forked 'bot' runs in tests/deploy_worker/test_warm_up.py: it prints the state of
its garbage collector (on, and the objects inherited frozen from the fork server) as one JSON line to
its log (stdout)."""

from __future__ import annotations

import gc
import json


def collector() -> int:
    print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}), flush=True)
    return 0


def first_use() -> int:
    """What a forked bot still builds for itself on first use, after the fork server's warm-up
    (``tenant_bot.app:warm_up``): its dispatcher with every router, the texts of a /start and of a
    booking in both locales, and the Bot API objects of an update and its answer. Prints, as one
    JSON line, how many routers, handlers, classes and templates it created after the fork (the
    warm-up's job is to make each of these zero) and whether the prebuilt routers were there."""
    from typing import Any, cast

    from aiogram.fsm.storage.base import DefaultKeyBuilder
    from aiogram.fsm.storage.redis import RedisStorage
    from aiogram.methods import SendMessage
    from aiogram.types import (
        InlineKeyboardButton,
        InlineKeyboardMarkup,
        ReplyKeyboardRemove,
        Update,
    )
    from redis.asyncio import Redis

    import tenant_bot.handlers
    from schemas.runtime import TenantRuntime
    from templates import LOCALES, _environment
    from tenant_bot.booking import BookingCore
    from tenant_bot.booking.models import utc_now
    from tenant_bot.dispatcher import build_dispatcher
    from tenant_bot.isolation import ChatEventIsolation
    from tenant_bot.middlewares.locale import LocaleStore
    from tenant_bot.notifications import Notifier
    from tenant_bot.resources import make_bot
    from tenant_bot.texts import BotTexts

    prebuilt = tenant_bot.handlers._prebuilt is not None
    abc_before = _abc_cache_entries()
    templates_before = len(_environment("tenant_bot").cache or {})
    runtime = TenantRuntime(
        slug="probe",
        bot_token="123456789:" + "B" * 35,
        database_url="postgresql://probe@127.0.0.1:1/probe",
        redis_url="redis://127.0.0.1:1/0",
        redis_prefix="probe:t:probe:",
        owner_ids=[1],
        telegram_api_base="http://127.0.0.1:1",
    )
    redis = Redis.from_url(runtime.redis_url.get_secret_value())
    texts = BotTexts(default_locale=runtime.locale)
    core = BookingCore(cast(Any, None), clock=utc_now)
    locales = LocaleStore(redis, prefix=runtime.redis_prefix)
    bot = make_bot(runtime)
    dispatcher = build_dispatcher(
        runtime=runtime,
        storage=RedisStorage(redis=redis, key_builder=DefaultKeyBuilder(prefix="probe:fsm")),
        isolation=ChatEventIsolation(),
        redis=redis,
        core=core,
        texts=texts,
        notifier=Notifier(
            bot,
            redis=redis,
            prefix=runtime.redis_prefix,
            texts=texts,
            locales=locales,
            owner_ids=runtime.owner_ids,
            waitlist=core.waitlist,
        ),
        locales=locales,
        clock=utc_now,
    )
    for locale in LOCALES:
        texts(locale, "welcome", name="Probe")
        texts(locale, "duration", hours=1, minutes=30)
        texts(locale, "booked", service="Haircut", when="Fri 7 Mar, 14:30", business="Probe")
    user = {"id": 7, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    message = {
        "message_id": 1,
        "date": 1700000000,
        "chat": {"id": 7, "type": "private", "first_name": "Ann"},
        "from": user,
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    updates = [
        Update.model_validate({"update_id": 1, "message": message}),
        Update.model_validate(
            {
                "update_id": 2,
                "callback_query": {
                    "id": "1",
                    "from": user,
                    "chat_instance": "1",
                    "message": message,
                    "data": "bk:1",
                },
            }
        ),
    ]
    answer = SendMessage(
        chat_id=7,
        text="Hi",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Book", callback_data="bk:1")]]
        ),
    )
    answer.model_dump(exclude_none=True)
    for method in (answer, SendMessage(chat_id=7, text="Hi", reply_markup=ReplyKeyboardRemove())):
        bot.session.build_form_data(bot, method)  # type: ignore[attr-defined]
        bot.session.check_response(
            bot=bot,
            method=method,
            status_code=200,
            content=json.dumps({"ok": True, "result": message}),
        )
    abc_added = _abc_cache_entries() - abc_before
    gc.collect()
    born = gc.get_objects()  # the permanent generation (what the server froze) is not in it
    names = [type(o).__name__ for o in born]
    # the dispatcher's own observers (and their update listener, error reporter) are per bot
    own = {id(observer._handler) for observer in dispatcher.observers.values()}
    observers = [*dispatcher.observers.values(), dispatcher.startup, dispatcher.shutdown]
    own |= {id(h) for observer in observers for h in observer.handlers}
    print(
        json.dumps(
            {
                "prebuilt": prebuilt,
                "routers": len(dispatcher.sub_routers),
                "routers_built": names.count("Router"),
                "handlers_built": sum(
                    type(o).__name__ == "HandlerObject" and id(o) not in own for o in born
                ),
                "classes_built": sum(isinstance(o, type) for o in born),
                "templates_compiled": len(_environment("tenant_bot").cache or {})
                - templates_before,
                "updates": len(updates),
                "abc_cache_entries_added": abc_added,
            }
        ),
        flush=True,
    )
    return 0


def _abc_cache_entries() -> int:
    """Entries in every ABC's subclass caches (positive and negative): a check that adds one
    writes to an object shared with the fork server."""
    import _abc
    from abc import ABCMeta

    total = 0
    seen: set[int] = set()
    stack: list[type] = [object]
    while stack:
        for cls in type.__subclasses__(stack.pop()):
            if id(cls) in seen:
                continue
            seen.add(id(cls))
            stack.append(cls)
            if isinstance(cls, ABCMeta):
                _, cache, negative, _ = _abc._get_dump(cls)
                total += len(cache) + len(negative)
    return total
