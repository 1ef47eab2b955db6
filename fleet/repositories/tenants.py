"""SQL over ``control.tenants``; rows leave as :class:`Tenant` (or :class:`ShownTenant`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

import asyncpg

from fleet.db import Executor
from fleet.errors import ConflictError

# What an API answer about a tenant is made of (see control_plane.render.tenant).
SHOWN_COLUMNS = (
    "slug, display_name, owner_telegram_ids, status, status_reason, desired_state, plan_code,"
    " locale, timezone, bot_id, bot_username, bot_token_enc, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class ShownTenant:
    """What an API answer about a tenant is made of (``SHOWN_COLUMNS``): no password ciphertexts."""

    slug: str
    display_name: str
    owner_telegram_ids: list[int]
    status: str
    status_reason: str | None
    desired_state: str
    plan_code: str | None
    locale: str
    timezone: str
    bot_id: int
    bot_username: str | None
    bot_token_enc: str = field(repr=False)
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Self:
        """The row's columns that are fields (a row may carry more)."""
        return cls(**{name: row[name] for name in _field_names(cls)})


@dataclass(frozen=True, slots=True)
class Tenant(ShownTenant):
    """A row of ``control.tenants``: what every layer above the repositories reads a tenant as."""

    id: int
    bot_token_fingerprint: str
    db_password_enc: str = field(repr=False)
    redis_password_enc: str = field(repr=False)
    deleted_at: datetime | None
    legacy_redis_keys: bool


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


SLUG_TAKEN = "a tenant with this slug already exists; pick another slug"
BOT_TAKEN = "this bot token is already used by another tenant; create a new bot with @BotFather"
_CONFLICTS = {
    "tenants_slug_live": ("slug", SLUG_TAKEN),
    "tenants_token_fingerprint_live": ("bot_token", BOT_TAKEN),
    "tenants_bot_id_live": (
        "bot_token",
        "this bot already serves another tenant; create a new bot with @BotFather",
    ),
}


def conflict_from(exc: asyncpg.UniqueViolationError) -> ConflictError:
    column, message = _CONFLICTS.get(exc.constraint_name or "", ("tenant", str(exc)))
    return ConflictError(column, message)


def _tenant(row: asyncpg.Record | None) -> Tenant | None:
    return None if row is None else Tenant.of(row)


class TenantRepository:
    """Reads and writes tenant rows; takes a connection so callers own the transaction."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def insert(self, **columns: Any) -> Tenant:
        names = list(columns)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        sql = (
            f"INSERT INTO control.tenants ({', '.join(names)}) VALUES ({placeholders}) RETURNING *"
        )
        try:
            row = await self._db.fetchrow(sql, *columns.values())
        except asyncpg.UniqueViolationError as exc:
            raise conflict_from(exc) from exc
        assert row is not None
        return Tenant.of(row)

    async def get(self, slug: str) -> Tenant | None:
        return _tenant(
            await self._db.fetchrow(
                "SELECT * FROM control.tenants WHERE slug = $1 AND deleted_at IS NULL", slug
            )
        )

    async def get_shown(self, slug: str) -> ShownTenant | None:
        """The columns an API answer shows (and the token ciphertext to mask), nothing else: the
        tenant's encrypted DB and Redis passwords are not even fetched."""
        row = await self._db.fetchrow(
            f"SELECT {SHOWN_COLUMNS} FROM control.tenants WHERE slug = $1 AND deleted_at IS NULL",
            slug,
        )
        return None if row is None else ShownTenant.of(row)

    async def get_by_id(self, tenant_id: int) -> Tenant | None:
        return _tenant(
            await self._db.fetchrow("SELECT * FROM control.tenants WHERE id = $1", tenant_id)
        )

    async def lock(self, tenant_id: int) -> Tenant | None:
        return _tenant(
            await self._db.fetchrow(
                "SELECT * FROM control.tenants WHERE id = $1 FOR UPDATE", tenant_id
            )
        )

    async def id_of(self, slug: str) -> int | None:
        """The id of the tenant that has (or last had) ``slug``: the live one, else the newest
        deleted one (whose jobs and events stay listable under its slug)."""
        found = await self._db.fetchval(
            "SELECT id FROM control.tenants WHERE slug = $1"
            " ORDER BY deleted_at IS NULL DESC, id DESC LIMIT 1",
            slug,
        )
        return None if found is None else int(found)

    async def slugs_of(self, tenant_ids: list[int]) -> dict[int, str]:
        """Slug by id for these tenants (deleted ones too)."""
        rows = await self._db.fetch(
            "SELECT id, slug FROM control.tenants WHERE id = ANY($1::bigint[])", tenant_ids
        )
        return {int(row["id"]): row["slug"] for row in rows}

    async def running_slugs(self) -> list[str]:
        """Slugs of the live tenants that are ``active`` and meant to run (whose bots should beat)."""
        rows = await self._db.fetch(
            "SELECT slug FROM control.tenants WHERE status = 'active'"
            " AND desired_state = 'running' AND deleted_at IS NULL"
        )
        return [row["slug"] for row in rows]

    async def using_bot(
        self,
        fingerprint: str,
        bot_id: int,
        *,
        excluding: int | None = None,
        for_update: bool = False,
    ) -> Tenant | None:
        """The live tenant (not deleted) that uses this bot, by its token's fingerprint or its
        bot id (a re-issued token of the same bot counts): the one rule for "is this bot taken",
        for creation, purchase and token changes. ``excluding`` a tenant id (the one changing its
        token); ``for_update`` locks the row."""
        return _tenant(
            await self._db.fetchrow(
                "SELECT * FROM control.tenants WHERE deleted_at IS NULL"
                " AND (bot_token_fingerprint = $1 OR bot_id = $2)"
                " AND id IS DISTINCT FROM $3 ORDER BY id LIMIT 1"
                + (" FOR UPDATE" if for_update else ""),
                fingerprint,
                bot_id,
                excluding,
            )
        )

    async def live(self) -> list[Tenant]:
        """Every live (not deleted) tenant, by id."""
        rows = await self._db.fetch(
            "SELECT * FROM control.tenants WHERE deleted_at IS NULL ORDER BY id"
        )
        return [Tenant.of(row) for row in rows]

    async def list(
        self,
        *,
        status: str | None = None,
        plan_code: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_deleted: bool = False,
    ) -> list[Tenant]:
        rows = await self._db.fetch(
            "SELECT * FROM control.tenants"
            " WHERE id > $1 AND ($2::text IS NULL OR status = $2)"
            " AND ($3::text IS NULL OR plan_code = $3) AND ($4 OR deleted_at IS NULL)"
            " ORDER BY id LIMIT $5",
            after_id,
            status,
            plan_code,
            include_deleted,
            limit,
        )
        return [Tenant.of(row) for row in rows]

    async def update(self, tenant_id: int, **columns: Any) -> Tenant | None:
        """Set ``columns`` (and ``updated_at``); column names come from code, never from input."""
        names = list(columns)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        try:
            row = await self._db.fetchrow(
                f"UPDATE control.tenants SET {assignments}, updated_at = now()"
                " WHERE id = $1 RETURNING *",
                tenant_id,
                *columns.values(),
            )
        except asyncpg.UniqueViolationError as exc:
            raise conflict_from(exc) from exc
        return _tenant(row)

    async def set_status_if(self, tenant_id: int, *, frm: str, to: str, reason: str | None) -> bool:
        """Change the tenant's status (and reason) only if it is still ``frm`` and no job of it is
        running; whether it changed."""
        status = await self._db.execute(
            "UPDATE control.tenants SET status = $3, status_reason = $4, updated_at = now()"
            " WHERE id = $1 AND status = $2 AND NOT EXISTS (SELECT 1 FROM control.jobs"
            " WHERE tenant_id = $1 AND status = 'running')",
            tenant_id,
            frm,
            to,
            reason,
        )
        return str(status).endswith(" 1")

    async def mark_deleted(self, tenant_id: int) -> None:
        await self._db.execute(
            "UPDATE control.tenants SET status = 'deleted', desired_state = 'deleted',"
            " deleted_at = now(), updated_at = now() WHERE id = $1",
            tenant_id,
        )
