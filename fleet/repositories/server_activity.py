"""SQL over PostgreSQL's own statistics views: the server connections the platform reports to
operators (tenant roles' vs all, against ``max_connections``)."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.db import Executor


@dataclass(frozen=True, slots=True)
class ServerConnections:
    """Client connections of the server right now: ``tenants`` of this installation's tenant roles
    (in this database), ``total`` of every role and database, and ``max_connections``."""

    tenants: int
    total: int
    max_connections: int


async def server_connections(db: Executor, *, role_prefix: str) -> ServerConnections:
    """Count ``pg_stat_activity``'s client backends. Any role sees every row's role and database
    (only the query text is hidden), so the platform's role needs no extra privilege. A tenant role
    is one named ``<role_prefix>...`` that is neither a superuser nor able to create roles (the
    provisioning role never counts as a tenant)."""
    row = await db.fetchrow(
        """
        SELECT count(*) FILTER (
                 WHERE a.datname = current_database()
                   AND starts_with(r.rolname, $1)
                   AND NOT r.rolsuper AND NOT r.rolcreaterole
               ) AS tenants,
               count(*) AS total,
               current_setting('max_connections')::int AS max_connections
        FROM pg_stat_activity a
        LEFT JOIN pg_roles r ON r.oid = a.usesysid
        WHERE a.backend_type = 'client backend'
        """,
        role_prefix,
    )
    assert row is not None
    return ServerConnections(
        tenants=row["tenants"], total=row["total"], max_connections=row["max_connections"]
    )
