"""Every message of every area renders with its lines apart (issue 16, item 1).

``trim_blocks`` once ate the newline after ``{% if %}``/``{% endif %}``, so optional lines were glued
to the line before them: "Добро пожаловать в Барбершоп Ивана!📍 Москва…", "/start — business
info/admin — owner menu", "👤 ИванServices: Стрижка". This test finds every macro of every
``templates/<area>/<locale>.j2`` by itself, renders it in every locale with realistic values, once
with everything filled in, once with every optional value empty and once with each one alone empty
or alone filled, and checks the text a person would read:

- a line the template source starts on a line of its own (``📍 {{ address }}``, ``Services: …``,
  ``/admin — …``) starts a line of the output too;
- an emoji that marks a line (📍 ☎️ 💳 👤 …) and a bot command (``/admin``) never follow a word;
- no blank lines at either end, never two blank lines in a row.

A macro with a parameter this file has no value for fails, naming it: add a realistic value below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from templates import LOCALES, Texts

# Realistic values by parameter name; ``EMPTY`` gives what "not given" looks like for each.
SAMPLES: dict[str, Any] = {
    "name": "Барбершоп Ивана",
    "display_name": "Барбершоп Ивана",
    "business": "Барбершоп Ивана",
    "welcome": "Стрижём с 2010 года.",
    "description": "Мужские стрижки и бритьё",
    "address": "Москва, ул. Ленина, 1",
    "phone": "+7 916 123-45-67",
    "business_phone": "+7 495 123-45-67",
    "map_url": "https://yandex.ru/maps/-/CDa1",
    "url": "https://t.me/barber_ivan_bot?start=s12",  # a booking link (issue 20)
    # the owner's statistics (issue 20)
    "booked": 40,
    "done": 30,
    "no_show": 3,
    "cancelled": 5,
    "no_show_rate": "9%",
    "cancel_rate": "11%",
    "revenue": "45 000 ₽",
    "expected": "9 000 ₽",
    "customers": 25,
    "new": 10,
    "returning": 15,
    "bookings": 12,
    "service": "Стрижка",
    "services": "Стрижка, Бритьё",
    "staff": "Иван",
    "customer": "Анна",
    "when": "Пт 7 мар, 14:30",
    "old_when": "Чт 6 мар, 12:00",
    "new_when": "Сб 8 мар, 15:00",
    "line": "Пн: 09:00-18:00",
    "days": "Вт, Ср, Чт, Пт",
    "day": "Пт 7 мар",
    "day_from": "01.03.2030",
    "day_to": "31.03.2030",
    "time": "14:30",
    "period": "Пт 7 мар, 14:00–16:00",
    "price": "1 500 ₽",
    "amount": "1 500 ₽",
    "currency": "",
    "duration": "1 ч 30 мин",
    "status": "подтверждена",
    "reason": "заболел мастер",
    "count": 3,
    "hours": "Пн 10:00–18:00\nВт 10:00–18:00\nСр выходной",
    "active": True,
    "on": True,
    "enabled": True,
    "confirm": True,
    "is_owner": True,
    "needs_confirmation": True,
    "auto_renew": True,
    "limit": 3,
    "notice": 60,
    "horizon": 30,
    "before": 5,
    "after": 10,
    "step": 30,
    "cancel": 120,
    "move": 120,
    "minutes": 90,
    "reminders": "24 ч, 2 ч",
    "timezone": "Москва (UTC+3)",
    # reminders that ask, no-show memory (issue 19)
    "value": "2x",
    "first": "24",
    "release": 3,
    "action": "нужна предоплата",
    "threshold": 2,
    "no_shows": 2,
    "field": "phone",
    # issue 21: the owner's day
    "chat": True,
    "since": "Пт 7 мар",
    "visits": 5,
    "cancellations": 2,
    "upcoming": 1,
    "spent": "7 500 ₽",
    "last_visit": "Пт 7 мар",
    "notes": "любит покороче",
    "blocked": True,
    "query": "Анна",
    "last": "Вс 14 фев",
    "who": "Иван",
    "source": "date",
    "country": "RU",
    # issue 20: reviews and mailings
    "stars": "★★★★☆",
    "comment": "Всё отлично, спасибо!",
    "average": "4,8",
    "rating": "⭐ 4,8 из 5 · отзывов: 23",
    "lines": "★★★★★ · Анна · Иван · Пт 7 мар\n★★★★☆ · Борис · Иван · Сб 8 мар",
    "hidden": True,
    "audience": "не были 60 дн.",
    "total": 500,
    "length": 1040,  # a photo mailing's caption, in Telegram's characters (issue 20)
    "text_limit": 4096,
    "sent": 480,
    "failed": 3,
    "skipped": 5,
    "bot": "barber_ivan_bot",
    "bot_username": "barber_ivan_bot",
    "plan_name": "Месяц",
    "paid_until": "31.12.2030",
    "card": "Bank card *4477",
    "support": "@botfleet_support",
    "code": "expired_on_confirmation",
    # issue 18: plan changes, payment history, auto-renewal consent
    "period_days": 30,
    "kind": "upgrade_paid",
    "amount_due": "1 000 ₽",
    "credit": "990 ₽",
    "effective_at": "31.12.2030",
    "current": True,
    "page": 1,
    "purpose": "auto_renewal",
    "entries": [
        {
            "day": "01.12.2030",
            "amount": "990 ₽",
            "status": "succeeded",
            "purpose": "purchase",
            "plan": "Месяц",
            "refunded": "500 ₽",
            "reason": None,
        },
        {
            "day": "02.12.2030",
            "amount": "990 ₽",
            "status": "canceled",
            "purpose": "auto_renewal",
            "plan": "Месяц",
            "refunded": None,
            "reason": "insufficient_funds",
        },
    ],
    "items": [
        {"name": "Месяц", "price": "990 ₽", "currency": "", "period_days": 30, "description": ""},
        {
            "name": "Год",
            "price": "9 900 ₽",
            "currency": "",
            "period_days": 365,
            "description": "Два месяца в подарок",
        },
    ],
    # deposits (issue 19)
    "deposit": "500 ₽",
    "paid": "500 ₽",
    "refund": "250 ₽",
    "kept": "250 ₽",
    "free": True,
    "full": False,
    "until": "14:45",
    "hold_minutes": 15,
    "hold": 15,
    "free_hours": 24,
    "keep_percent": 50,
    "policy": "Бесплатная отмена — не позднее чем за 24 ч до начала.",
    "provider": "ok",
    "receipts": True,
    "vat": 1,
    "state": "paid",
    "refunded": False,
    "charge": "2c1b7a3e-000f-5000-9000-1a2b3c4d5e6f",
    "booking_id": 42,
    "rule_kind": "fixed",
    "percent": "30",
    "rule": "депозит 500 ₽",
    # An owner notice's payload (``schemas/events.py``), every field any notice reads.
    "p": {
        "amount": "1 500 ₽",
        "currency": "",
        "paid_until": "31.12.2030",
        "action": "provision",
        "reason": "unpaid",
        "days_left": 3,
        "auto_renew": True,
        "suspend_at": "03.01.2031",
        "delete_at": "02.02.2031",
        "export": True,
        "support": "@botfleet_support",
        "plan_name": "Месяц",
        "previous_status": "provisioning",
        "charge_at": "30.12.2030",
        "period_days": 30,
        "card": "Bank card *4477",
        "paid": "1 500 ₽",
        "refunded_total": "1 500 ₽",
        "effect": "none",
    },
    "contact": "ivan@example.com",
}
# Other values the notices' payload fields take, each rendered too.
PAYLOAD_VARIANTS: dict[str, list[Any]] = {
    "action": ["provision", "resume", "extend", ""],
    "reason": ["unpaid", "operator", "expired_on_confirmation", "insufficient_funds", ""],
    "days_left": [1, 7],
    "auto_renew": [False],
    "export": [False],
    "amount": [None],
    "paid_until": [None],
    "effect": ["period_taken_back", "subscription_ended"],
}
# Values a caller may leave empty even where the macro has no default (a business without an
# address, a staff member without services, a bot not paid yet); parameters with defaults, flags and
# counts are varied too.
MAY_BE_EMPTY = {
    "welcome",
    "description",
    "address",
    "phone",
    "business_phone",
    "map_url",
    "reason",
    "services",
    "card",
    "plan_name",
    "paid_until",
    "reminders",
    "notes",
    "last_visit",
}
# Other values of a parameter, each rendered too.
VARIANTS: dict[str, list[Any]] = {
    "status": ["active", "provisioning", "new", "suspended", "error", "deleting", "ожидает"],
    "code": ["insufficient_funds", "3d_secure_failed", "abandoned", "something_new"],
    "kind": [
        "upgrade_credited",
        "at_period_end",
        "keep_current",
        "immediate",
        "unchanged",
    ],
}
# Values of error macros' keyword arguments (``error_invalid_input(field=...)``).
KWARGS: dict[str, Any] = {"field": "phone", "minutes": 120, "status": "отменена"}

# Emojis that begin a line of a card, and commands a text lists one per line.
LINE_MARKERS = "📍☎🗺🕒💈🙋👤"
COMMANDS = re.compile(r"(?<![\s(«\"'])/(?:start|book|my|language|help|admin|mybots|newbot)\b")
MACRO = re.compile(r"{%-?\s*macro\s+(\w+)\s*\((.*?)\)\s*-?%}(.*?){%-?\s*endmacro\s*-?%}", re.DOTALL)


def _empty(value: Any) -> Any:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return value
    return ""


def _areas() -> list[str]:
    root = resources.files("templates")
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and any(f.name.endswith(".j2") for f in entry.iterdir())
    )


def _sources(area: str, locale: str) -> dict[str, tuple[str, str]]:
    """Each macro's parameters and body as written in the template file."""
    text = resources.files("templates").joinpath(area, f"{locale}.j2").read_text("utf-8")
    return {m.group(1): (m.group(2), m.group(3)) for m in MACRO.finditer(text)}


def _with_defaults(parameters: str) -> set[str]:
    """The parameters a macro's signature gives a default (``address=''``)."""
    return set(re.findall(r"(\w+)\s*=", parameters))


def _line_starts(body: str) -> list[str]:
    """The literal text each source line of a macro begins with (``📍``, ``Services:``)."""
    starts = []
    for line in body.split("\n")[1:]:
        literal = re.split(r"{[{%#]", line, maxsplit=1)[0].strip()
        if len(literal) >= 2 or (literal and not literal.isascii()):
            starts.append(literal)
    return starts


def _calls(macro: Any, defaults: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what was left out, the values) for every combination this test renders."""
    names = list(macro.arguments)
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        raise AssertionError(
            f"macro {macro.name}: no sample value for {unknown}; add one to SAMPLES in {__file__}"
        )
    full = {n: SAMPLES[n] for n in names}
    optional = [
        n for n in names if n in MAY_BE_EMPTY or n in defaults or isinstance(full[n], bool | int)
    ]
    extra = dict(KWARGS) if macro.catch_kwargs else {}
    bare = {**full, **{n: _empty(full[n]) for n in optional}}
    yield "nothing", {**full, **extra}
    yield "every optional value", bare
    for n in optional:
        yield f"{n}", {**full, n: _empty(full[n])}
        yield f"all optional values but {n}", {**bare, n: full[n]}
    for n in names:
        for value in VARIANTS.get(n, []):
            yield f"nothing ({n}={value!r})", {**full, n: value}
    for key in extra:
        yield f"kwarg {key}", {**full, **{k: v for k, v in extra.items() if k != key}}
    if "p" in names:
        for key, values in PAYLOAD_VARIANTS.items():
            for value in values:
                yield f"p.{key}={value!r}", {**full, "p": {**SAMPLES["p"], key: value}}
    if "items" in names:
        plain = [{**item, "description": ""} for item in SAMPLES["items"]]
        yield "items without descriptions", {**full, "items": plain}
        yield "one item", {**full, "items": SAMPLES["items"][1:]}


def _problems(text: str, starts: list[str]) -> list[str]:
    found = []
    if text != text.strip():
        found.append("blank space at an end")
    if "\n\n\n" in text:
        found.append("two blank lines in a row")
    for marker in LINE_MARKERS:
        for match in re.finditer(re.escape(marker), text):
            if match.start() > 0 and not text[match.start() - 1].isspace():
                found.append(f"{marker} glued to the text before it: {_around(text, match)!r}")
    for match in COMMANDS.finditer(text):
        found.append(f"command glued to the text before it: {_around(text, match)!r}")
    for start in starts:
        for match in re.finditer(re.escape(start), text):
            if match.start() > 0 and text[match.start() - 1] != "\n":
                found.append(f"line {start!r} does not start a line: {_around(text, match)!r}")
    return found


def _around(text: str, match: re.Match[str]) -> str:
    return text[max(0, match.start() - 30) : match.end() + 10]


def _cases() -> list[tuple[str, str, str]]:
    return [
        (area, locale, key)
        for area in _areas()
        for locale in LOCALES
        for key in sorted(Texts(area).keys(locale))
    ]


def test_every_area_is_found() -> None:
    assert {"tenant_bot", "sales_bot"} <= set(_areas())


@pytest.mark.parametrize(("area", "locale", "key"), _cases())
def test_lines_stay_apart(area: str, locale: str, key: str) -> None:
    texts = Texts(area)
    macro = texts.macro(locale, key)
    parameters, body = _sources(area, locale)[key]
    starts = _line_starts(body)
    problems: dict[str, list[str]] = {}
    for left_out, values in _calls(macro, _with_defaults(parameters)):
        text = texts(locale, key, **values)
        if found := _problems(text, starts):
            problems[f"{left_out} left out:\n{text}"] = found
    assert not problems, f"templates/{area}/{locale}.j2 {key}:\n" + "\n\n".join(
        f"{rendered}\n  -> {found}" for rendered, found in problems.items()
    )
