"""The docker runtime warms a new image once before its first tenant container: one throwaway,
confined container runs ``python -m tenant_bot --warm-up``; concurrent callers share it, a rebuilt
image (a new id) is warmed again, and a warm-up that fails is counted and never fatal."""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import pytest

from deploy_worker.runtimes.docker import DockerRuntime
from deploy_worker.spec import LABEL_NAMESPACE
from tests.deploy_worker.conftest import IMAGE

pytestmark = pytest.mark.docker

# the image under test: CI builds botfleet:latest from these sources; a tag of one's own by hand
WARM_IMAGE = os.environ.get("BOTFLEET_TEST_TENANT_IMAGE", IMAGE)
BASE_IMAGE = os.environ.get("BOTFLEET_BASE_IMAGE", "botfleet-base:bookworm")


def _left(client: Any, namespace: str) -> list[Any]:
    return list(
        client.containers.list(all=True, filters={"label": f"{LABEL_NAMESPACE}={namespace}"})
    )


async def test_an_image_is_warmed_once_and_shared(docker_engine: Any) -> None:
    namespace = "warm" + secrets.token_hex(3) + "_"
    runtime = DockerRuntime(client=docker_engine, namespace=namespace, warm_images=[WARM_IMAGE])
    try:
        first, second = await asyncio.gather(
            runtime.warm_image(WARM_IMAGE), runtime.warm_image(WARM_IMAGE)
        )
        assert runtime.last_warm_up_error is None
        assert first is not None and first == second  # one warm-up container for both callers
        assert runtime.warm_ups == 1
        await runtime.warm_up()  # the worker's start: this image id is warm already
        assert runtime.warm_ups == 1
        assert runtime.warm_up_failures == 0
        assert _left(docker_engine, namespace) == []  # the warm-up container is gone
    finally:
        await runtime.close()


async def test_a_failing_warm_up_is_counted_not_fatal(docker_engine: Any) -> None:
    import docker.errors

    try:
        docker_engine.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{BASE_IMAGE} (an image without botfleet) is not here")
    namespace = "warm" + secrets.token_hex(3) + "_"
    runtime = DockerRuntime(client=docker_engine, namespace=namespace)
    try:
        assert await runtime.warm_image(BASE_IMAGE) is None  # no tenant_bot in it
        assert runtime.warm_up_failures == 1
        assert runtime.last_warm_up_error and "warm-up" in runtime.last_warm_up_error
        assert await runtime.warm_image(BASE_IMAGE) is None  # not tried again for this image id
        assert runtime.warm_up_failures == 1
        assert await runtime.warm_image("botfleet:no-such-tag-" + secrets.token_hex(3)) is None
        assert runtime.warm_up_failures == 2
        assert runtime.warm_ups == 0
        assert _left(docker_engine, namespace) == []
    finally:
        await runtime.close()
