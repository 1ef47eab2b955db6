"""A tenant can ``SET`` its role's statement timeout away in its own session; the reconciler ends its
backends that outlive the limits anyway (issue 14, item 9), with the tenant's real credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from deploy_worker.runtimes.base import Runtime
from deploy_worker.service import WorkerParts
from fleet.settings import Settings
from tests.support.dw_helpers import tenant_row, wait_status

GRACE_S = 5.0  # terminate_runaway_backends' default grace past the limit


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(tenant_statement_timeout_s=0.5)


@pytest.mark.slow  # waits for a runaway query's limit: ~7 s
@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_the_reconciler_ends_a_tenant_query_that_set_its_timeout_away(
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    runtime: Runtime,
    control_db: str,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    secrets = worker.tenants.secrets_of(await tenant_row(wpool, tenant.id))
    role = worker.tenants.names(unique_slug).role
    parts = urlsplit(control_db)
    netloc = f"{role}:{quote(secrets.db_password, safe='')}@{parts.hostname}:{parts.port or 5432}"
    conn = await asyncpg.connect(urlunsplit(parts._replace(netloc=netloc)))
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "500ms"  # the role's default
        await conn.execute("SET statement_timeout = 0")  # ... which the tenant may lift
        sleeper = asyncio.create_task(conn.fetchval("SELECT pg_sleep(120)"))
        await asyncio.sleep(0.5 + GRACE_S + 1.0)
        assert not sleeper.done()

        report = await worker.reconciler.run_once()
        assert report.runaway_backends_terminated == 1, report
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await asyncio.wait_for(sleeper, 10)
    finally:
        await conn.close()
    # The tenant's bot, whose queries are short, is untouched.
    assert (await tenant_row(wpool, tenant.id)).status == "active"
