"""SlotService: free slots read from the database through the pure engine in :mod:`.slots`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from tenant_bot.booking import slots as engine
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, NotFound
from tenant_bot.booking.holidays import CALENDARS, HolidayDays
from tenant_bot.booking.models import (
    BusinessSettings,
    CalendarDays,
    Clock,
    Service,
    Slot,
    WorkInterval,
    utc_now,
)
from tenant_bot.booking.repositories import availability as repo

MAX_RANGE_DAYS = 62


@dataclass(frozen=True, slots=True)
class Context:
    """Engine inputs for one service over a range of local days."""

    settings: BusinessSettings
    service: Service
    rules: engine.Rules
    spec: engine.ServiceSpec
    staff: list[engine.StaffAvailability]
    business_exceptions: dict[date, list[WorkInterval]]
    load: dict[tuple[int, date], int]


def rules_of(settings: BusinessSettings) -> engine.Rules:
    """The engine's view of the settings."""
    return engine.Rules(
        zone=settings.zone,
        step_minutes=settings.slot_step_minutes,
        buffer_before_minutes=settings.buffer_before_minutes,
        buffer_after_minutes=settings.buffer_after_minutes,
        min_notice_minutes=settings.min_notice_minutes,
        horizon_days=settings.horizon_days,
    )


def assemble(
    staff_ids: Sequence[int],
    *,
    hours: Iterable[tuple[int, int, int, int]],
    exceptions: Iterable[tuple[int | None, date, int | None, int | None]],
    blocks: Iterable[tuple[int | None, datetime, datetime]],
    busy: Mapping[int, list[engine.Busy]] | None = None,
    holidays: HolidayDays | None = None,
) -> tuple[list[engine.StaffAvailability], dict[date, list[WorkInterval]]]:
    """Engine inputs from rows: each staff member's availability, and business-wide exceptions
    (public ``holidays`` among them, by the rules of :mod:`.holidays`)."""
    weekly: dict[int, dict[int, list[WorkInterval]]] = defaultdict(lambda: defaultdict(list))
    for sid, weekday, start, end in hours:
        weekly[sid][weekday].append(WorkInterval(start, end))
    own: dict[int, dict[date, list[WorkInterval]]] = defaultdict(dict)
    business: dict[date, list[WorkInterval]] = {}
    for owner_id, day, first, last in exceptions:
        intervals = (business if owner_id is None else own[owner_id]).setdefault(day, [])
        if first is not None and last is not None:  # no minutes: a day off
            intervals.append(WorkInterval(first, last))
    if holidays is not None:
        for day in holidays.closed:
            business.setdefault(day, [])  # a business exception of the date wins
        for day, like in holidays.workdays.items():
            if day in business:
                continue
            for sid in staff_ids:
                if (
                    day not in own[sid]
                    and not weekly[sid].get(day.weekday())
                    and weekly[sid].get(like)
                ):
                    own[sid][day] = list(weekly[sid][like])
    by_staff: dict[int | None, list[tuple[datetime, datetime]]] = defaultdict(list)
    for blocked_id, block_start, block_end in blocks:
        by_staff[blocked_id].append((block_start, block_end))
    staff = [
        engine.StaffAvailability(
            staff_id=sid,
            weekly={d: sorted(v) for d, v in weekly[sid].items()},
            exceptions={d: sorted(v) for d, v in own[sid].items()},
            blocks=by_staff[sid] + by_staff[None],
            busy=(busy or {}).get(sid, []),
        )
        for sid in staff_ids
    ]
    return staff, {d: sorted(v) for d, v in business.items()}


async def load_context(
    conn: asyncpg.Connection,
    *,
    service_id: int,
    staff_id: int | None,
    day_from: date,
    day_to: date,
    exclude_booking_id: int | None = None,
    slot_start: datetime | None = None,
) -> Context:
    """Read everything the engine needs in one round trip; raises NotFound for a missing service.

    With ``slot_start`` only what can clash with that slot is read (the booking path).
    """
    # Local days map to UTC within +-14 h; the margin also covers buffers (at most 12 h each).
    range_start = datetime.combine(day_from, time(), UTC) - timedelta(days=2)
    range_end = datetime.combine(day_to, time(), UTC) + timedelta(days=3)
    snap = await repo.load_snapshot(
        conn,
        service_id=service_id,
        staff_id=staff_id,
        day_from=day_from,
        day_to=day_to,
        range_start=range_start,
        range_end=range_end,
        exclude_booking_id=exclude_booking_id,
        slot_start=slot_start,
    )
    if snap.service is None:
        raise NotFound("no such service", entity="service", id=service_id)
    zone = snap.settings.zone
    busy: dict[int, list[engine.Busy]] = defaultdict(list)
    load: dict[tuple[int, date], int] = defaultdict(int)
    for sid, occ_start, occ_end, booked_service, starts_at in snap.busy:
        busy[sid].append(engine.Busy(occ_start, occ_end, (booked_service, starts_at)))
        load[(sid, starts_at.astimezone(zone).date())] += 1
    holidays = await CALENDARS.for_range(
        snap.settings.holiday_country, snap.settings.holidays_opened, range_start, range_end
    )
    staff, business = assemble(
        snap.staff_ids,
        hours=snap.hours,
        exceptions=snap.exceptions,
        blocks=snap.blocks,
        busy=busy,
        holidays=holidays,
    )
    if snap.load is not None and slot_start is not None:
        slot_day = slot_start.astimezone(zone).date()
        load = defaultdict(int, {(sid, slot_day): n for sid, n in snap.load.items()})
    service = snap.service
    return Context(
        settings=snap.settings,
        service=service,
        rules=rules_of(snap.settings),
        spec=engine.ServiceSpec(service.id, service.duration_minutes, service.capacity),
        staff=staff,
        business_exceptions=business,
        load=dict(load),
    )


def _days(day_from: date, day_to: date) -> list[date]:
    if day_to < day_from:
        raise InvalidInput("day_to", "must not be before day_from")
    if (day_to - day_from).days >= MAX_RANGE_DAYS:
        raise InvalidInput("day_to", f"the range is limited to {MAX_RANGE_DAYS} days")
    return [day_from + timedelta(days=i) for i in range((day_to - day_from).days + 1)]


class SlotService:
    """Free slots for customers: ``free_slots`` for a day range, ``available_days`` and
    ``calendar_days`` (which also tells fully booked days from closed ones) for a calendar."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def free_slots(
        self,
        service_id: int,
        *,
        day_from: date,
        day_to: date | None = None,
        staff_id: int | None = None,
        notice: bool = True,
    ) -> list[Slot]:
        """Bookable slots of ``service_id`` on local days ``day_from..day_to`` (inclusive).

        ``staff_id`` None means "anyone": each start once, given to the least-booked staff member.
        Inactive services have no slots. ``notice=False`` drops the customers' minimum notice
        (the owner's and staff's picker: a walk-in at 10:05 for 10:30; past starts stay out).
        """
        _, slots = await self._compute(
            service_id, day_from, day_to or day_from, staff_id, notice=notice
        )
        return slots

    async def available_days(
        self,
        service_id: int,
        *,
        day_from: date,
        days: int = 14,
        staff_id: int | None = None,
    ) -> list[date]:
        """The local days among ``days`` from ``day_from`` that have at least one free slot."""
        day_to = day_from + timedelta(days=max(days, 1) - 1)
        ctx, slots = await self._compute(service_id, day_from, day_to, staff_id)
        return sorted({slot.start.astimezone(ctx.rules.zone).date() for slot in slots})

    async def calendar_days(
        self,
        service_id: int,
        *,
        day_from: date,
        days: int = 14,
        staff_id: int | None = None,
        notice: bool = True,
    ) -> CalendarDays:
        """The days among ``days`` from ``day_from`` with a free time, and those that are open but
        fully booked; the rest are closed (see :class:`~.models.CalendarDays`). ``notice`` as in
        :meth:`free_slots`."""
        day_to = day_from + timedelta(days=max(days, 1) - 1)
        ctx, slots = await self._compute(service_id, day_from, day_to, staff_id, notice=notice)
        if not ctx.service.active:
            return CalendarDays(frozenset(), frozenset())
        free = {slot.start.astimezone(ctx.rules.zone).date() for slot in slots}
        opened = engine.open_days(
            ctx.staff,
            rules=ctx.rules,
            service=ctx.spec,
            business_exceptions=ctx.business_exceptions,
            days=[day for day in _days(day_from, day_to) if day not in free],
            now=self._clock(),
        )
        return CalendarDays(frozenset(free), frozenset(opened))

    async def _compute(
        self,
        service_id: int,
        day_from: date,
        day_to: date,
        staff_id: int | None,
        *,
        notice: bool = True,
    ) -> tuple[Context, list[Slot]]:
        days = _days(day_from, day_to)
        async with self._db.connection() as conn:
            ctx = await load_context(
                conn, service_id=service_id, staff_id=staff_id, day_from=day_from, day_to=day_to
            )
        if not notice:
            ctx = replace(ctx, rules=replace(ctx.rules, min_notice_minutes=0))
        if not ctx.service.active:
            return ctx, []
        return ctx, engine.free_slots(
            ctx.staff,
            rules=ctx.rules,
            service=ctx.spec,
            business_exceptions=ctx.business_exceptions,
            days=days,
            now=self._clock(),
            load=ctx.load,
        )
