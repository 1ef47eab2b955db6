"""PgBouncer in front of PostgreSQL for tenant bots: its configuration and the login lookup it uses.

Why a pooler (docs/ARCHITECTURE.md, "A transaction pooler in front of PostgreSQL"): a tenant bot's
pool already drops to zero connections when idle, but a hundred tenants booking at once still need
one server connection each (two with the background work), and PostgreSQL allows a fixed number. In
**transaction** mode PgBouncer lends a server connection to a client for one transaction only, so the
server connections are bounded by :attr:`PoolerConfig.max_server_connections` whatever the number of
tenants or of their clients; a client that finds them all busy queues inside PgBouncer (up to
``query_wait_timeout``).

What survives transaction pooling, and why:

- ``search_path``: set on each tenant role (``ALTER ROLE ... SET search_path``), PostgreSQL applies it
  when the server connection logs in; PgBouncer keeps one pool per (database, user), so a tenant's
  transactions only ever run on connections logged in as its own role.
- Prepared statements: PgBouncer 1.18 does not track them (that needs 1.21), so bots behind it turn
  asyncpg's statement cache off (``statement_cache_size=0``, ``TenantRuntime.db_transaction_pooler``).
  asyncpg then sends every query as an *unnamed* statement: Parse, Describe and Flush (no Sync), then
  Bind, Execute and Sync. PgBouncer hands the server connection back only at a ReadyForQuery, which
  comes after the Sync, so the Parse and its Bind always run on the same server connection. The booking
  path (``book_slots`` with a ``booking_request[]`` argument) is one such statement: its composite
  type's codec is loaded once per client connection (asyncpg's type cache, not its statement cache).
- Nothing tenant bots do is session state: no LISTEN, no session advisory locks (``book_slots`` takes
  ``pg_advisory_xact_lock``), no SET, no temporary tables.

Logins: PgBouncer checks a tenant's password against PostgreSQL's own (``auth_query`` through a
``SECURITY DEFINER`` lookup function a dedicated role may execute), rather than an ``auth_file``
rewritten on every provision: a tenant created or dropped, or a password rotated, is seen at its next
login with nothing to keep in sync, in every deployment (compose, one host, several). The function
answers only for plain login roles (no superuser, CREATEROLE, replication or BYPASSRLS role can log in
through the pooler). ``auth_file`` holds only the lookup role.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import asyncpg

# The lookup PgBouncer runs (as the auth user) for every client login.
AUTH_QUERY = "SELECT usename, passwd FROM pgbouncer.get_auth($1)"


def auth_lookup_sql() -> str:
    """The schema and function of the login lookup (``migrations/pooler/auth_lookup.sql``); run by a
    superuser (it reads ``pg_authid``), in the database the pooler serves."""
    return (files("migrations") / "pooler" / "auth_lookup.sql").read_text(encoding="utf-8")


async def install_auth_lookup(conn: asyncpg.Connection, *, auth_user: str, password: str) -> None:
    """Create (or update) the lookup role and function and let the role execute it; ``conn`` must be
    a superuser's, in the pooler's database. Idempotent."""
    role = _quote_ident(auth_user)
    async with conn.transaction():
        # installers at once (two `up`s, parallel tests) would collide replacing the function
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('botfleet pooler auth lookup'))")
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", auth_user)
        verb = "ALTER" if exists else "CREATE"
        literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
        await conn.execute(f"{verb} ROLE {role} LOGIN NOINHERIT PASSWORD {literal}")
        await conn.execute(auth_lookup_sql())
        await conn.execute(f"GRANT USAGE ON SCHEMA pgbouncer TO {role}")
        await conn.execute(f"GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO {role}")


async def drop_auth_lookup(conn: asyncpg.Connection, *, auth_user: str) -> None:
    """Undo :func:`install_auth_lookup` for one lookup role (the function stays for others)."""
    role = _quote_ident(auth_user)
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", auth_user):
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")


@dataclass(frozen=True, kw_only=True)
class PoolerConfig:
    """One PgBouncer serving one database of one PostgreSQL server to tenant bots.

    ``max_server_connections`` is the bound the platform promises PostgreSQL (``max_db_connections``,
    the login lookup's connections included: they are a pool of the same database). How PgBouncer
    1.18 shares it among a thousand per-tenant pools (read in its source, measured in
    tests/fleet/test_pooler.py and benchmarks/density.py):

    - At the bound, a pool with a waiting client closes the longest idle server connection of *any*
      pool of the database (``evict_connection``) and logs in its own: idle tenants hold nothing
      others wait for, whatever ``server_idle_s``. That only closes backends PostgreSQL would keep
      idle below the bound (10 s: a customer's next tap, seconds later, finds its connection).
    - Waiting pools are served in the order PgBouncer created them, one new connection per pool per
      pass: with more tenants busy at once than the bound, the tenants served last wait longest
      (seconds on a loaded host) and a client past ``query_wait_timeout_s`` is refused politely.
      The remedy is a bound above the tenants busy in the same second (compose: 150), not fewer
      connections per tenant: ``pool_per_tenant`` 1 instead of 3 doubled the refusals measured by
      benchmarks/density.py (likely: every bot login runs the lookup on a pool of that size too).
    - ``reserve_per_tenant`` (``reserve_pool_size``) more are lent to a tenant whose client waited
      ``reserve_after_s``: a slow export or statistics query does not hold its customers up for
      its length. Still within the bound.
    - A client that finds no server connection within ``query_wait_timeout_s`` is disconnected with
      an error (SQLSTATE 08P01) the bot maps to "temporarily unavailable, try again": a wait is
      bounded, and the customer is told.
    """

    listen_host: str = "127.0.0.1"
    listen_port: int
    server_host: str
    server_port: int = 5432
    database: str
    auth_user: str
    auth_file: str
    pidfile: str = ""
    logfile: str = ""
    max_server_connections: int = 40
    pool_per_tenant: int = 3
    reserve_per_tenant: int = 1
    reserve_after_s: float = 1.0
    max_clients: int = 5000
    server_idle_s: int = 10
    query_wait_timeout_s: int = 8
    server_login_retry_s: int = 1
    server_connect_timeout_s: int = 5

    def ini(self) -> str:
        """The ``pgbouncer.ini`` text."""
        settings = {
            "listen_addr": self.listen_host,
            "listen_port": self.listen_port,
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": self.auth_file,
            "auth_user": self.auth_user,
            "auth_query": AUTH_QUERY,
            # the lookup role may also read the admin console's SHOW commands (fleet.pooler_stats)
            "stats_users": self.auth_user,
            "pool_mode": "transaction",
            "max_client_conn": self.max_clients,
            "default_pool_size": self.pool_per_tenant,
            "min_pool_size": 0,
            "reserve_pool_size": self.reserve_per_tenant,
            "reserve_pool_timeout": f"{self.reserve_after_s:g}",
            "max_db_connections": self.max_server_connections,
            "server_idle_timeout": self.server_idle_s,
            "server_lifetime": 3600,
            "query_wait_timeout": self.query_wait_timeout_s,
            # After a failed server login (PostgreSQL restarting, unreachable) PgBouncer waits this
            # long before trying again, refusing new clients of that pool meanwhile (PgBouncer's
            # default, 15 s, kept every tenant out for 15 s after PostgreSQL was back): 1 s tries
            # again at once without hammering a server that is still away.
            "server_login_retry": self.server_login_retry_s,
            # a server that does not answer a connect at all (host gone, packets dropped) fails the
            # attempt after this, not PgBouncer's 15 s, so waiting clients hear of it in time
            "server_connect_timeout": self.server_connect_timeout_s,
            # asyncpg sends none of these, psql and libpq-based tools may
            "ignore_startup_parameters": "extra_float_digits,options",
            "pidfile": self.pidfile,
            "logfile": self.logfile,
            "log_connections": 0,
            "log_disconnections": 0,
            "stats_period": 60,
        }
        database = (
            f"{self.database} = host={self.server_host} port={self.server_port}"
            f" dbname={self.database} auth_user={self.auth_user}"
        )
        lines = ["[databases]", database, "", "[pgbouncer]"]
        lines += [
            f"{key} = {value}"
            for key, value in settings.items()
            if value != "" or key == "unix_socket_dir"
        ]
        return "\n".join(lines) + "\n"


# docker-compose.yml runs PostgreSQL with max_connections 500: the tenants' pooler may take 150 of
# them (the platform's pools and PostgreSQL's superuser reserve need about 40), so a burst of a hundred
# tenants booking in the same second each finds a connection instead of queueing behind the others.
COMPOSE_SERVER_CONNECTIONS = 150


def compose_config() -> PoolerConfig:
    """The configuration of docker-compose.yml's ``pgbouncer`` service (``ops/pgbouncer/pgbouncer.ini``
    is this, rendered; a test keeps the two equal)."""
    return PoolerConfig(
        max_server_connections=COMPOSE_SERVER_CONNECTIONS,
        listen_host="0.0.0.0",  # noqa: S104 (inside its container, on the compose networks)
        listen_port=6432,
        server_host="postgres",
        database="botfleet",
        auth_user="botfleet_pooler",
        auth_file="/tmp/userlist.txt",  # noqa: S108 (written by the entrypoint, mode 0600)
    )


def auth_file_line(user: str, password: str) -> str:
    """One ``auth_file`` line (``"user" "password"``; a double quote is doubled)."""
    return '"{}" "{}"\n'.format(user.replace('"', '""'), password.replace('"', '""'))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
