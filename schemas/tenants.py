"""Tenant bodies shared by the CLI, the control plane API and the sales bot."""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

SLUG_PATTERN = r"^[a-z][a-z0-9_]{2,30}$"
BOT_TOKEN_RE = re.compile(r"^(\d{3,20}):[A-Za-z0-9_-]{30,64}$")
Locale = Literal["ru", "en"]
LOCALES: tuple[str, ...] = ("ru", "en")


def check_bot_token(token: str) -> str:
    """Raise ValueError unless ``token`` looks like a @BotFather token (``123456789:AA...``)."""
    if not BOT_TOKEN_RE.fullmatch(token.strip()):
        raise ValueError(
            "is not a bot token: expected the form 123456789:AAE... as @BotFather gives it "
            "(digits, a colon, then 30+ letters, digits, '_' or '-')"
        )
    return token.strip()


def bot_id_of(token: str) -> int:
    """The bot's numeric id, the part of its token before the colon."""
    return int(token.split(":", 1)[0])


def check_timezone(name: str) -> str:
    """Raise ValueError unless ``name`` is an IANA time zone (e.g. Europe/Moscow)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "is not a known IANA time zone; use a name like Europe/Moscow, Asia/Yekaterinburg "
            "or UTC"
        ) from None
    if name not in available_timezones() and name != "UTC":
        raise ValueError("is not a canonical IANA time zone name, e.g. Europe/Moscow")
    return name


class TenantCreate(BaseModel):
    """What it takes to create a tenant."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "slug": "barber_ivan",
                    "display_name": "Ivan's Barbershop",
                    "owner_telegram_ids": [123456789],
                    "bot_token": "7012345678:AAE3xampleTokenValue_abcdefghijklmn",
                    "plan_code": "basic",
                    "timezone": "Europe/Moscow",
                    "locale": "ru",
                }
            ]
        },
    )

    slug: str = Field(pattern=SLUG_PATTERN, description="Lowercase name used for schema/role names")
    display_name: str = Field(min_length=1, max_length=128)
    owner_telegram_ids: list[int] = Field(min_length=1, max_length=10)
    bot_token: SecretStr
    plan_code: str | None = None
    timezone: str = "Europe/Moscow"
    locale: Locale = "ru"

    @field_validator("display_name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("owner_telegram_ids")
    @classmethod
    def _check_owner_ids(cls, value: list[int]) -> list[int]:
        for owner in value:
            if owner <= 0 or owner >= 2**52:
                raise ValueError("Telegram user ids are positive integers, e.g. 123456789")
        return list(dict.fromkeys(value))

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_bot_token(value.get_secret_value()))

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return check_timezone(value)
