"""Tenant slugs and the names derived from them.

Schema and role names are the only identifiers the platform ever interpolates into SQL. They are
built here, from a validated slug, and quoted with :func:`quote_ident`; nothing else is.
"""

from __future__ import annotations

import re

from fleet.errors import ValidationError

SLUG_PATTERN = r"^[a-z][a-z0-9_]{2,30}$"
_SLUG_RE = re.compile(SLUG_PATTERN)
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")


def validate_slug(slug: str) -> str:
    """Return ``slug`` if it matches :data:`SLUG_PATTERN`, else raise :class:`ValidationError`."""
    if not isinstance(slug, str) or not _SLUG_RE.fullmatch(slug):
        raise ValidationError(
            "slug",
            f"must match {SLUG_PATTERN} (3-31 characters: a lowercase letter, then lowercase "
            "letters, digits or underscores), e.g. 'barber_ivan'",
        )
    return slug


def validate_prefix(prefix: str) -> str:
    """Validate the role/schema name prefix setting (e.g. ``tenant_``)."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValidationError(
            "tenant_role_prefix", "must be 1-16 lowercase letters, digits or '_', e.g. 'tenant_'"
        )
    return prefix


def tenant_schema(slug: str, prefix: str = "tenant_") -> str:
    """The PostgreSQL schema of a tenant: ``<prefix><slug>``."""
    return validate_prefix(prefix) + validate_slug(slug)


def tenant_role(slug: str, prefix: str = "tenant_") -> str:
    """The PostgreSQL login role (and Redis ACL user) of a tenant: ``<prefix><slug>``."""
    return validate_prefix(prefix) + validate_slug(slug)


def installation_redis_prefix(prefix: str = "tenant_") -> str:
    """Every Redis key of an installation starts with this: its role prefix and a colon, so
    installations sharing one Redis never read, write or delete each other's keys."""
    return f"{validate_prefix(prefix)}:"


def redis_prefix(slug: str, prefix: str = "tenant_") -> str:
    """Every Redis key of a tenant lives under this prefix (``tenant_:t:barber:``)."""
    return f"{installation_redis_prefix(prefix)}t:{validate_slug(slug)}:"


def legacy_redis_prefix(slug: str) -> str:
    """Where a tenant's keys lived before the installation's prefix was put in front of them (they
    are moved on the tenant's next provision: :func:`fleet.data_plane.move_legacy_keys`)."""
    return f"t:{validate_slug(slug)}:"


def platform_redis_key(prefix: str, name: str) -> str:
    """A key (or key prefix) of the platform's own, e.g. the API's rate-limit buckets:
    ``tenant_:bf:ratelimit``."""
    return f"{installation_redis_prefix(prefix)}bf:{name}"


def quote_ident(name: str) -> str:
    """Quote a SQL identifier (doubling embedded quotes), like PostgreSQL's ``quote_ident``."""
    if "\x00" in name:
        raise ValidationError("identifier", "must not contain NUL bytes")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a SQL string literal for the few DDL statements that take no parameters (passwords)."""
    if "\x00" in value:
        raise ValidationError("literal", "must not contain NUL bytes")
    return "'" + value.replace("'", "''") + "'"
