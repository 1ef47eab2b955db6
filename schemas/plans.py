"""Plan bodies: what a buyer can purchase (price, period, limits)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from schemas.tenants import Locale

PLAN_CODE_PATTERN = r"^[a-z][a-z0-9_-]{1,31}$"

Price = Annotated[
    Decimal,
    Field(
        ge=0,
        max_digits=12,
        decimal_places=2,
        allow_inf_nan=False,
        description="Price per period, e.g. 990.00",
    ),
]
Currency = Annotated[
    str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. RUB", examples=["RUB"])
]
PeriodDays = Annotated[int, Field(ge=1, le=3660, description="Length of one paid period in days")]
MaxStaff = Annotated[
    int | None, Field(ge=1, le=10_000, description="Staff members allowed; null for no limit")
]
PlanName = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=2000)]

_EXAMPLE: JsonDict = {
    "code": "basic",
    "name": "Basic",
    "description": "One bot, up to 3 staff members",
    "price": "990.00",
    "currency": "RUB",
    "period_days": 30,
    "max_staff": 3,
    "active": True,
    "translations": {"ru": {"name": "Базовый", "description": "Один бот, до 3 мастеров"}},
}


_T = TypeVar("_T")


def not_null(value: _T | None) -> _T:
    """Refuse an explicit null for a field that can only be omitted (PATCH bodies)."""
    if value is None:
        raise ValueError("must not be null; omit the field to keep its value")
    return value


def _strip_name(value: str | None) -> str | None:
    if value is None:
        raise ValueError("must not be null; omit the field to keep its value")
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class PlanTranslation(BaseModel):
    """A plan's name (and description) in one language; a missing description shows the plan's."""

    model_config = ConfigDict(extra="forbid")

    name: PlanName
    description: Description | None = None

    _check_name = field_validator("name")(_strip_name)


Translations = Annotated[
    dict[Locale, PlanTranslation],
    Field(
        description="The name and description buyers see per language (ru, en); a language "
        "missing here shows `name` and `description`"
    ),
]


def plan_text(plan: Mapping[str, Any], locale: str) -> tuple[str, str]:
    """A plan's (name, description) in ``locale``, else its own (``plan`` is a row or a dict)."""
    translation = (plan.get("translations") or {}).get(locale) or {}
    description = translation.get("description")
    return (
        translation.get("name") or plan["name"],
        plan["description"] if description is None else description,
    )


class PlanCreate(BaseModel):
    """A new plan."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    code: str = Field(
        pattern=PLAN_CODE_PATTERN,
        description="Permanent id: a lowercase letter, then 1-31 lowercase letters, digits, _ or -",
    )
    name: PlanName
    description: Description = ""
    price: Price
    currency: Currency = "RUB"
    period_days: PeriodDays
    max_staff: MaxStaff = None
    active: bool = True
    translations: Translations = {}

    _check_name = field_validator("name")(_strip_name)


class PlanUpdate(BaseModel):
    """Changes to a plan; omitted fields stay as they are. The code never changes."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"price": "1190.00", "active": True}]}
    )

    # Omitted means "keep"; null is refused except for max_staff, where it means "no limit".
    name: PlanName | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    price: Price | SkipJsonSchema[None] = None
    currency: Currency | SkipJsonSchema[None] = None
    period_days: PeriodDays | SkipJsonSchema[None] = None
    max_staff: MaxStaff = None
    active: bool | SkipJsonSchema[None] = None
    translations: Translations | SkipJsonSchema[None] = None

    _check_name = field_validator("name")(_strip_name)
    _not_null = field_validator(
        "description", "price", "currency", "period_days", "active", "translations"
    )(not_null)


class PlanPublic(BaseModel):
    """A plan as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    code: str
    name: str
    description: str
    price: Decimal
    currency: str
    period_days: int
    max_staff: int | None
    active: bool
    translations: dict[str, PlanTranslation] = {}
    created_at: datetime
    updated_at: datetime
