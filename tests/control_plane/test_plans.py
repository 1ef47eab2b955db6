"""Plans CRUD: create (201), read, change, deactivate, delete only when unused."""

from __future__ import annotations

import httpx

from tests.support.api_support import tenant_body


def _plan(code: str, **overrides: object) -> dict:
    return {
        "code": code,
        "name": "Basic",
        "description": "One bot",
        "price": "990.00",
        "currency": "RUB",
        "period_days": 30,
        "max_staff": 3,
        **overrides,
    }


async def test_plan_crud(admin: httpx.AsyncClient, created) -> None:
    code = created.plan_code()
    made = await admin.post("/api/v1/plans", json=_plan(code))
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/api/v1/plans/{code}"
    assert made.json()["price"] == "990.00"
    assert made.json()["active"] is True

    assert (await admin.get(f"/api/v1/plans/{code}")).json()["name"] == "Basic"
    listed = (await admin.get("/api/v1/plans")).json()["items"]
    assert code in {p["code"] for p in listed}

    changed = await admin.patch(
        f"/api/v1/plans/{code}", json={"price": 1190.5, "max_staff": None, "active": False}
    )
    assert changed.status_code == 200
    assert changed.json()["price"] == "1190.50"
    assert changed.json()["max_staff"] is None
    inactive = (await admin.get("/api/v1/plans", params={"active": "false"})).json()["items"]
    assert code in {p["code"] for p in inactive}
    active = (await admin.get("/api/v1/plans", params={"active": "true"})).json()["items"]
    assert code not in {p["code"] for p in active}

    assert (await admin.delete(f"/api/v1/plans/{code}")).status_code == 204
    assert (await admin.get(f"/api/v1/plans/{code}")).status_code == 404
    assert (await admin.delete(f"/api/v1/plans/{code}")).status_code == 404


async def test_plan_conflicts_and_validation(admin: httpx.AsyncClient, created) -> None:
    code = created.plan_code()
    assert (await admin.post("/api/v1/plans", json=_plan(code))).status_code == 201
    duplicate = await admin.post("/api/v1/plans", json=_plan(code))
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"] == [
        {"field": "code", "message": f"a plan with code {code!r} already exists"}
    ]

    bad = await admin.post(
        "/api/v1/plans",
        json=_plan("Bad Code", price="-1", currency="rub", period_days=0, extra="x"),
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"code", "price", "currency", "period_days", "extra"} <= fields

    too_precise = await admin.patch(f"/api/v1/plans/{code}", json={"price": "1.234"})
    assert too_precise.status_code == 422
    assert too_precise.json()["errors"][0]["field"] == "price"
    nulled = await admin.patch(f"/api/v1/plans/{code}", json={"name": None})
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["field"] == "name"
    empty = await admin.patch(f"/api/v1/plans/{code}", json={})
    assert empty.status_code == 422
    missing = await admin.patch("/api/v1/plans/nope_nope", json={"name": "x"})
    assert missing.status_code == 404


async def test_a_plan_in_use_cannot_be_deleted(admin: httpx.AsyncClient, created) -> None:
    code = created.plan_code()
    await admin.post("/api/v1/plans", json=_plan(code))
    await admin.post("/api/v1/tenants", json=tenant_body(created.slug(), plan_code=code))
    refused = await admin.delete(f"/api/v1/plans/{code}")
    assert refused.status_code == 409
    assert "active=false" in refused.json()["detail"]
    assert "1 tenants" in refused.json()["detail"]


async def test_plan_names_per_language(admin: httpx.AsyncClient, created) -> None:
    """``translations`` is optional: a plan made without it reads as before (an empty object)."""
    code = created.plan_code()
    plain = await admin.post("/api/v1/plans", json=_plan(code))
    assert plain.status_code == 201 and plain.json()["translations"] == {}

    translations = {
        "ru": {"name": "Базовый", "description": "Один бот"},
        "en": {"name": "Basic", "description": None},
    }
    changed = await admin.patch(f"/api/v1/plans/{code}", json={"translations": translations})
    assert changed.status_code == 200, changed.text
    assert (await admin.get(f"/api/v1/plans/{code}")).json()["translations"] == translations
    # Other changes keep the translations.
    await admin.patch(f"/api/v1/plans/{code}", json={"price": "1500.00"})
    assert (await admin.get(f"/api/v1/plans/{code}")).json()["translations"] == translations

    for bad in (
        {"de": {"name": "Basis"}},  # a language the bots do not speak
        {"ru": {"name": "  "}},
        {"ru": {"description": "no name"}},
        None,
    ):
        refused = await admin.patch(f"/api/v1/plans/{code}", json={"translations": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["errors"][0]["field"].startswith("translations"), refused.text

    other = created.plan_code()
    made = await admin.post("/api/v1/plans", json=_plan(other, translations=translations))
    assert made.status_code == 201 and made.json()["translations"] == translations
