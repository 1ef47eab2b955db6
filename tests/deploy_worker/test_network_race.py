"""Two workers creating the tenants' network at once end up on one network.

Docker does not refuse a second network of one name (current engines ignore ``check_duplicate``):
in a full CI run two workers once made two ``botfleet-tenants`` and every later container create
failed with "network ... is ambiguous". Here the race is made for real against the engine.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from deploy_worker.runtimes.docker import DockerRuntime
from deploy_worker.spec import LABEL_MANAGED, MANAGED_BY

pytestmark = pytest.mark.docker


def _named(engine: Any, name: str) -> list[Any]:
    return [n for n in engine.networks.list(names=[name]) if n.name == name]


def test_concurrent_workers_settle_on_one_network(docker_engine: Any) -> None:
    name = f"bf-race-{secrets.token_hex(4)}"
    workers = [DockerRuntime(client=docker_engine, namespace=f"race{i}_") for i in range(6)]
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda w: w._ensure_network(name), workers))
        left = _named(docker_engine, name)
        assert len(left) == 1, [n.id for n in left]
        gateways = {gateway for _, gateway in answers}
        assert len(gateways) == 1 and None not in gateways  # every worker: the same network
        assert {reference for reference, _ in answers} == {name}  # unambiguous again
    finally:
        for network in _named(docker_engine, name):
            network.remove()


def test_a_duplicate_left_by_a_race_is_removed_and_never_breaks_a_create(
    docker_engine: Any,
) -> None:
    name = f"bf-race-{secrets.token_hex(4)}"
    labels = {LABEL_MANAGED: MANAGED_BY, "botfleet.role": "tenants"}
    first = docker_engine.networks.create(name, driver="bridge", labels=labels)
    docker_engine.networks.create(name, driver="bridge", labels=labels)  # what a race leaves
    try:
        reference, gateway = DockerRuntime(client=docker_engine, namespace="race_")._ensure_network(
            name
        )
        assert reference == name and gateway
        assert [n.id for n in _named(docker_engine, name)] == [first.id]  # the oldest kept
    finally:
        for network in _named(docker_engine, name):
            network.remove()
