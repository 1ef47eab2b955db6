"""The deploy worker's events honour their contract (``schemas/events.py``) and render for owners.

A real worker on the process runtime provisions a tenant (``tenant.live``), an operator suspends it
(``tenant.suspended``, reason ``operator``), resumes it (``tenant.live`` again) and deletes it
(``tenant.deleted``); a tenant whose token Telegram does not know fails for good (``tenant.failed``).
Every payload is read back from ``control.events`` and rendered by the sales bot in every locale with
``StrictUndefined``; the operators-only kinds (``tenant.degraded``/``recovered``, from the reconciler's
crash-loop watch, see test_reconciler.py) must parse.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from deploy_worker.runtimes.base import Runtime
from deploy_worker.service import WorkerParts
from fleet.lifecycle import TenantLifecycle
from sales_bot.outbox import OutboxDelivery
from schemas.events import EVENTS, TenantDegraded, TenantRecovered, TenantSuspended, parse_event
from templates import LOCALES, Texts
from tests.support.dw_helpers import wait_status

WORKER_OWNER_KINDS = {"tenant.live", "tenant.suspended", "tenant.deleted", "tenant.failed"}


async def _events(pool: asyncpg.Pool, tenant_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT kind, payload FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant_id
    )


@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_worker_events_render_for_owners_in_every_locale(
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    runtime: Runtime,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    lifecycle = TenantLifecycle(pool=wpool)
    await lifecycle.request(unique_slug, "suspend", actor="test")
    await wait_status(wpool, tenant.id, "suspended", runtime=runtime)
    await lifecycle.request(unique_slug, "resume", actor="test")
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    await lifecycle.request(unique_slug, "deprovision", actor="test")
    await wait_status(wpool, tenant.id, "deleted", runtime=runtime)

    broken = await make_tenant(f"{unique_slug}x"[:30], register=False)
    await wait_status(wpool, broken.id, "error", runtime=runtime)

    rows = [*await _events(wpool, tenant.id), *await _events(wpool, broken.id)]
    assert [r["kind"] for r in rows] == [
        "tenant.live",
        "tenant.suspended",
        "tenant.live",
        "tenant.deleted",
        "tenant.failed",
    ]
    assert parse_event(rows[1]["kind"], rows[1]["payload"]) == TenantSuspended(reason="operator")
    assert {r["kind"] for r in rows} == WORKER_OWNER_KINDS
    outbox = OutboxDelivery(pool=wpool, bot=None, texts=Texts("sales_bot"), support="@help")  # type: ignore[arg-type]
    for row in rows:
        event = parse_event(row["kind"], row["payload"])
        assert EVENTS[row["kind"]].for_owner
        for locale in LOCALES:
            text = outbox.render(event, locale=locale, bot="shop_bot", timezone="Europe/Moscow")
            assert "shop_bot" in text and "None" not in text, (row["kind"], locale, text)


def test_operator_only_kinds_parse_and_are_never_delivered() -> None:
    for event in (TenantDegraded(reason="crash loop", restarts=5), TenantRecovered()):
        assert parse_event(event.kind, event.payload()) == event
        assert not EVENTS[event.kind].for_owner
