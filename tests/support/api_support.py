"""Helpers of the control plane tests."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from fastapi import FastAPI


def make_token(bot_id: int | None = None) -> str:
    """A bot token shaped like @BotFather's, unique per call."""
    bot_id = bot_id or secrets.randbelow(9 * 10**9) + 10**9
    return f"{bot_id}:AA{secrets.token_urlsafe(33)[:33]}"


def tenant_body(slug: str, **overrides: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "display_name": f"Shop {slug}",
        "owner_telegram_ids": [secrets.randbelow(10**9) + 1],
        "bot_token": make_token(),
        "timezone": "Europe/Moscow",
        "locale": "ru",
        **overrides,
    }


def client_for(app: FastAPI, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )
