"""``botfleet fleet upgrade``'s failure threshold: the rollout stops queueing once failures pass
``max_failures``, names the failed tenants and leaves the tenants it did not reach as they were."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.errors import RuntimeBackendError
from deploy_worker.rollout import RollingUpgrade
from deploy_worker.runtimes.base import EnsureResult, Runtime
from deploy_worker.spec import RuntimeSpec
from fleet.secrets import SecretBox
from fleet.settings import Settings
from tests.support.dw_helpers import running_worker, wait_status

BAD_IMAGE = "botfleet:bad"


class FailsOnBadImage:
    """The real runtime, except that ``ensure`` of the tenants in ``bad`` on BAD_IMAGE fails (as a
    broken image would), before the running instance is touched."""

    def __init__(self, inner: Runtime, bad: set[str]) -> None:
        self._inner = inner
        self.bad = bad
        self.ensured: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        self.ensured.append((spec.slug, spec.image))
        if spec.image == BAD_IMAGE and spec.slug in self.bad:
            raise RuntimeBackendError(f"{spec.slug}: image {BAD_IMAGE} does not start")
        return await self._inner.ensure(spec, recreate=recreate)


@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_upgrade_stops_after_max_failures(
    settings: Settings,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    make_tenant: Any,
    unique_slug: str,
) -> None:
    slugs = [f"{unique_slug}{i}" for i in range(4)]
    failing = FailsOnBadImage(runtime, bad={slugs[1], slugs[2]})
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=failing
    ) as _parts:
        tenants = [await make_tenant(slug) for slug in slugs]  # ids ascend: the upgrade's order
        for tenant in tenants:
            await wait_status(wpool, tenant.id, "active", runtime=runtime)
        before = {
            r["slug"]: dict(r)
            for r in await wpool.fetch(
                "SELECT t.slug, d.image, d.desired_image, d.spec_hash, d.container_id"
                " FROM control.tenants t JOIN control.deployments d ON d.tenant_id = t.id"
            )
        }
        old_image = before[slugs[0]]["image"]
        assert old_image != BAD_IMAGE
        jobs_before = await wpool.fetchval("SELECT count(*) FROM control.jobs")

        progress: list[tuple[str, str]] = []
        report = await RollingUpgrade(
            pool=wpool,
            image=BAD_IMAGE,
            parallel=1,
            max_failures=1,
            attempts=1,
            poll_s=0.1,
            timeout_s=60,
            on_progress=lambda slug, outcome: progress.append((slug, outcome)),
        ).run()

    # slug0 upgrades, slug1 fails (1 failure: within the limit), slug2 fails (2 > 1: stop),
    # slug3 is never queued.
    assert report.upgraded == [slugs[0]]
    assert sorted(report.failed) == [slugs[1], slugs[2]]
    assert all("does not start" in reason for reason in report.failed.values()), report.failed
    assert report.stopped_early and not report.ok
    assert report.not_started == [slugs[3]]
    assert progress == [(slugs[0], "ok"), (slugs[1], "failed"), (slugs[2], "failed")]
    assert [slug for slug, image in failing.ensured if image == BAD_IMAGE] == slugs[:3]

    # Exactly one redeploy job per tenant reached; none for the tenant left out.
    jobs = await wpool.fetch(
        "SELECT t.slug, j.status FROM control.jobs j JOIN control.tenants t ON t.id = j.tenant_id"
        " WHERE j.kind = 'redeploy' ORDER BY j.id"
    )
    assert [(j["slug"], j["status"]) for j in jobs] == [
        (slugs[0], "done"),
        (slugs[1], "dead"),
        (slugs[2], "dead"),
    ]
    assert await wpool.fetchval("SELECT count(*) FROM control.jobs") == jobs_before + 3

    # The tenant not reached is exactly as it was: row, image pin and running instance.
    untouched = await wpool.fetchrow(
        "SELECT t.status, d.image, d.desired_image, d.spec_hash, d.container_id"
        " FROM control.tenants t JOIN control.deployments d ON d.tenant_id = t.id"
        " WHERE t.slug = $1",
        slugs[3],
    )
    assert untouched["status"] == "active"
    for column in ("image", "desired_image", "spec_hash", "container_id"):
        assert untouched[column] == before[slugs[3]][column], column
    status = await runtime.status(slugs[3])
    assert status.alive and status.image == old_image
    assert status.spec_hash == before[slugs[3]]["spec_hash"]

    # The upgraded tenant runs the new image; the failed ones keep their old instance running,
    # pinned back to the image they had so the reconciler does not retry the failing one.
    assert (await runtime.status(slugs[0])).image == BAD_IMAGE
    for slug in slugs[1:3]:
        current = await runtime.status(slug)
        assert current.alive and current.image == old_image, (slug, current)
        pin = await wpool.fetchval(
            "SELECT d.desired_image FROM control.deployments d"
            " JOIN control.tenants t ON t.id = d.tenant_id WHERE t.slug = $1",
            slug,
        )
        assert pin == before[slug]["desired_image"], (slug, pin)
