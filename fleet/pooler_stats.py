"""What the tenants' PgBouncer holds right now, from its admin console (the special ``pgbouncer``
database): client connections (the bots' pooled ones), server connections to PostgreSQL against the
bound it keeps (``max_db_connections``), and clients waiting for a server connection.

The admin console speaks only the simple query protocol, which asyncpg never uses for rows, so this
module is a small client of its own over asyncio streams: startup, SCRAM-SHA-256 (or MD5, or
cleartext, as the pooler asks) with the ``stats_users`` role's password, ``SHOW POOLS`` and
``SHOW CONFIG``, terminate. The key derivation (4096 PBKDF2 rounds, about a millisecond) is the only
CPU work; everything else awaits the socket, under one timeout.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import unquote, urlsplit

from schemas.capacity import PoolerFigures


class PoolerStatsError(Exception):
    """The admin console could not be reached, refused the login, or answered something unexpected."""


async def read_pooler_figures(url: str, *, timeout_s: float = 5.0) -> PoolerFigures:
    """``SHOW POOLS`` summed over every pool but the console's own, and the server bound from
    ``SHOW CONFIG``; ``url`` is ``postgresql://user:password@host:port/pgbouncer``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise PoolerStatsError(
            "the pooler stats URL must be postgresql://user:password@host:port/pgbouncer"
        )
    try:
        return await asyncio.wait_for(
            _read(
                host=parts.hostname,
                port=parts.port or 6432,
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                database=parts.path.lstrip("/") or "pgbouncer",
            ),
            timeout_s,
        )
    except TimeoutError as exc:
        raise PoolerStatsError(
            f"the pooler's admin console did not answer in {timeout_s}s"
        ) from exc
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise PoolerStatsError(f"the pooler's admin console is unreachable: {exc}") from exc


async def _read(*, host: str, port: int, user: str, password: str, database: str) -> PoolerFigures:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        console = _Console(reader, writer)
        try:
            await console.login(user=user, password=password, database=database)
        except PoolerStatsError as exc:
            raise PoolerStatsError(
                f"the pooler refused the stats login as {user!r} ({exc}): check"
                " BOTFLEET_POOLER_STATS_URL's user and password, and that the user is in its"
                " stats_users"
            ) from exc
        pools = await console.query("SHOW POOLS")
        config = await console.query("SHOW CONFIG")
        writer.write(b"X" + struct.pack("!i", 4))
        await writer.drain()
    finally:
        writer.close()
    clients = servers = waiting = 0
    for row in pools:
        if row.get("database") == "pgbouncer":  # the console's own pseudo-pool
            continue
        clients += int(row.get("cl_active") or 0) + int(row.get("cl_waiting") or 0)
        waiting += int(row.get("cl_waiting") or 0)
        servers += sum(
            int(row.get(column) or 0)
            for column in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        )
    settings = {row.get("key"): row.get("value") for row in config}
    bound = int(settings.get("max_db_connections") or 0)
    return PoolerFigures(
        client_connections=clients,
        server_connections=servers,
        waiting_clients=waiting,
        server_connections_max=bound,
    )


class _Console:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def _send(self, kind: bytes, body: bytes) -> None:
        self._writer.write(kind + struct.pack("!i", len(body) + 4) + body)
        await self._writer.drain()

    async def _receive(self) -> tuple[bytes, bytes]:
        header = await self._reader.readexactly(5)
        length = struct.unpack("!i", header[1:])[0]
        if not 4 <= length <= 1 << 20:
            raise PoolerStatsError("the pooler's admin console sent a malformed message")
        body = await self._reader.readexactly(length - 4)
        if header[:1] == b"E":
            raise PoolerStatsError(f"the pooler's admin console said: {_error_text(body)}")
        return header[:1], body

    async def login(self, *, user: str, password: str, database: str) -> None:
        params = b"".join(
            key + b"\0" + value.encode() + b"\0"
            for key, value in ((b"user", user), (b"database", database))
        )
        body = struct.pack("!i", 196608) + params + b"\0"
        self._writer.write(struct.pack("!i", len(body) + 4) + body)
        await self._writer.drain()
        scram: _Scram | None = None
        while True:
            kind, body = await self._receive()
            if kind == b"Z":
                return
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, notices
            code = struct.unpack("!i", body[:4])[0]
            if code == 0:
                continue
            if code == 3:
                await self._send(b"p", password.encode() + b"\0")
            elif code == 5:
                inner = hashlib.md5((password + user).encode()).hexdigest()  # noqa: S324 (protocol)
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()  # noqa: S324 (protocol)
                await self._send(b"p", b"md5" + outer.encode() + b"\0")
            elif code == 10:
                if b"SCRAM-SHA-256\0" not in body[4:]:
                    raise PoolerStatsError("the pooler offers no SCRAM-SHA-256 login")
                scram = _Scram(password)
                first = scram.client_first().encode()
                await self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
            elif code == 11 and scram is not None:
                await self._send(b"p", scram.client_final(body[4:].decode()).encode())
            elif code == 12 and scram is not None:
                scram.verify(body[4:].decode())
            else:
                raise PoolerStatsError(f"the pooler asks for a login this client lacks ({code})")

    async def query(self, sql: str) -> list[dict[str, str | None]]:
        await self._send(b"Q", sql.encode() + b"\0")
        columns: list[str] = []
        rows: list[dict[str, str | None]] = []
        while True:
            kind, body = await self._receive()
            if kind == b"T":
                (count,) = struct.unpack("!h", body[:2])
                at = 2
                for _ in range(count):
                    end = body.index(b"\0", at)
                    columns.append(body[at:end].decode())
                    at = end + 1 + 18  # table oid, column, type oid, size, modifier, format
            elif kind == b"D":
                (count,) = struct.unpack("!h", body[:2])
                at = 2
                values: list[str | None] = []
                for _ in range(count):
                    (size,) = struct.unpack("!i", body[at : at + 4])
                    at += 4
                    if size < 0:
                        values.append(None)
                    else:
                        values.append(body[at : at + size].decode(errors="replace"))
                        at += size
                rows.append(dict(zip(columns, values, strict=False)))
            elif kind == b"Z":
                return rows


class _Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password: str) -> None:
        self._password = password.encode()
        self._nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self._first_bare = f"n=,r={self._nonce}"
        self._server_signature = b""

    def client_first(self) -> str:
        return "n,," + self._first_bare

    def client_final(self, server_first: str) -> str:
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not fields.get("r", "").startswith(self._nonce):
            raise PoolerStatsError("the pooler's SCRAM nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(
            "sha256", self._password, base64.b64decode(fields["s"]), int(fields["i"])
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={fields['r']}"
        message = f"{self._first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self._server_signature = hmac.digest(server_key, message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify(self, server_final: str) -> None:
        fields = dict(item.split("=", 1) for item in server_final.split(","))
        if not hmac.compare_digest(base64.b64decode(fields.get("v", "")), self._server_signature):
            raise PoolerStatsError("the pooler's SCRAM signature is wrong")


def _error_text(body: bytes) -> str:
    fields = {part[:1]: part[1:].decode(errors="replace") for part in body.split(b"\0") if part}
    return fields.get(b"M", "unknown error")[:300]
