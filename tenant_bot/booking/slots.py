"""The slot engine: pure functions from hours, exceptions, blocks and bookings to bookable slots.

Nothing here touches the database or the clock, so it is property-tested directly.

Rules, in the tenant's time zone (``zoneinfo``, so DST days are right):

- A day's hours are the staff member's date exception if any (no intervals = day off), else the
  business-wide exception for that date if any, else the weekly hours of that weekday.
- Starts sit on a wall-clock grid of ``step`` minutes from each interval's start; a wall time that does
  not exist (the spring-forward gap) is skipped; an ambiguous one (fall-back) means its first occurrence.
  The appointment ``[start, start + duration)`` (real minutes) must end within the interval.
- The appointment must not overlap a blocked period (the staff member's or the whole business's).
- Its occupied range ``[start - buffer_before, end + buffer_after)`` must not overlap the occupied range
  of another session of that staff member; seats of the same session (same service and start) are
  counted against the service's capacity. The database enforces the same (an exclusion constraint and a
  unique index).
- Customers need ``start >= now + min_notice`` and a local start date before ``today + horizon_days``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tenant_bot.booking.errors import (
    BeyondHorizon,
    OutsideWorkingHours,
    SlotBlocked,
    SlotTaken,
    TooLate,
)
from tenant_bot.booking.models import Slot, WorkInterval


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings the engine needs."""

    zone: ZoneInfo
    step_minutes: int
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    horizon_days: int = 30


@dataclass(frozen=True, slots=True)
class Busy:
    """An active booking's occupied range; ``session`` = (service id, start) groups seats."""

    start: datetime
    end: datetime
    session: tuple[int, datetime]


@dataclass(frozen=True, slots=True)
class StaffAvailability:
    """Everything that decides one staff member's free time."""

    staff_id: int
    weekly: Mapping[int, Sequence[WorkInterval]]
    exceptions: Mapping[date, Sequence[WorkInterval]] = field(default_factory=dict)
    blocks: Sequence[tuple[datetime, datetime]] = ()
    busy: Sequence[Busy] = ()


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """The service being booked."""

    service_id: int
    duration_minutes: int
    capacity: int = 1


def to_utc(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Local wall time ``day`` + ``minute`` (0..1440) as UTC; a nonexistent time maps forward."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _exists(day: date, minute: int, zone: ZoneInfo) -> bool:
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    return to_utc(day, minute, zone).astimezone(zone).replace(tzinfo=None) == naive


def day_intervals(
    staff: StaffAvailability,
    business_exceptions: Mapping[date, Sequence[WorkInterval]],
    day: date,
) -> Sequence[WorkInterval]:
    """The staff member's working intervals on local ``day`` (empty on a day off)."""
    if day in staff.exceptions:
        return staff.exceptions[day]
    if day in business_exceptions:
        return business_exceptions[day]
    return staff.weekly.get(day.weekday(), ())


def grid_starts(
    day: date, interval: WorkInterval, *, zone: ZoneInfo, step: int, duration: int
) -> list[datetime]:
    """UTC starts on the wall-clock grid of ``interval`` whose appointment ends inside it."""
    limit = to_utc(day, interval.end_minute, zone)
    length = timedelta(minutes=duration)
    starts = []
    for minute in range(interval.start_minute, interval.end_minute, step):
        if not _exists(day, minute, zone):
            continue
        start = to_utc(day, minute, zone)
        if start + length <= limit:
            starts.append(start)
    return starts


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def seats_left(start: datetime, rules: Rules, service: ServiceSpec, busy: Iterable[Busy]) -> int:
    """Seats still free at ``start`` given the staff member's busy ranges (0 when taken)."""
    end = start + timedelta(minutes=service.duration_minutes)
    occ_start = start - timedelta(minutes=rules.buffer_before_minutes)
    occ_end = end + timedelta(minutes=rules.buffer_after_minutes)
    session = (service.service_id, start)
    taken = 0
    for b in busy:
        if not _overlaps(occ_start, occ_end, b.start, b.end):
            continue
        if b.session != session:
            return 0
        taken += 1
    return max(service.capacity - taken, 0)


def _blocked(start: datetime, end: datetime, blocks: Iterable[tuple[datetime, datetime]]) -> bool:
    return any(_overlaps(start, end, b0, b1) for b0, b1 in blocks)


def _horizon_end(now: datetime, rules: Rules) -> date:
    return now.astimezone(rules.zone).date() + timedelta(days=rules.horizon_days)


def staff_slots(
    staff: StaffAvailability,
    *,
    rules: Rules,
    service: ServiceSpec,
    business_exceptions: Mapping[date, Sequence[WorkInterval]],
    day: date,
    now: datetime,
) -> list[Slot]:
    """Free slots of one staff member on local ``day`` for a customer (every rule applies)."""
    earliest = now + timedelta(minutes=rules.min_notice_minutes)
    if day < now.astimezone(rules.zone).date() or day >= _horizon_end(now, rules):
        return []
    length = timedelta(minutes=service.duration_minutes)
    slots = []
    for interval in day_intervals(staff, business_exceptions, day):
        for start in grid_starts(
            day,
            interval,
            zone=rules.zone,
            step=rules.step_minutes,
            duration=service.duration_minutes,
        ):
            if start < earliest or _blocked(start, start + length, staff.blocks):
                continue
            left = seats_left(start, rules, service, staff.busy)
            if left > 0:
                slots.append(Slot(start, start + length, staff.staff_id, left))
    return slots


def free_slots(
    staff: Sequence[StaffAvailability],
    *,
    rules: Rules,
    service: ServiceSpec,
    business_exceptions: Mapping[date, Sequence[WorkInterval]],
    days: Iterable[date],
    now: datetime,
    load: Mapping[tuple[int, date], int] | None = None,
) -> list[Slot]:
    """Free slots over ``days`` for the staff given, in start order.

    With several staff ("anyone"), each start is offered once, given to the staff member with the
    fewest bookings that day (``load``), ties going to the earlier one in ``staff`` order.
    """
    result: list[Slot] = []
    for day in days:
        best: dict[datetime, tuple[int, int, Slot]] = {}
        for rank, member in enumerate(staff):
            busy_that_day = (load or {}).get((member.staff_id, day), 0)
            for slot in staff_slots(
                member,
                rules=rules,
                service=service,
                business_exceptions=business_exceptions,
                day=day,
                now=now,
            ):
                key = (busy_that_day, rank, slot)
                if slot.start not in best or key[:2] < best[slot.start][:2]:
                    best[slot.start] = key
        result.extend(best[start][2] for start in sorted(best))
    return result


def open_days(
    staff: Sequence[StaffAvailability],
    *,
    rules: Rules,
    service: ServiceSpec,
    business_exceptions: Mapping[date, Sequence[WorkInterval]],
    days: Iterable[date],
    now: datetime,
) -> set[date]:
    """The days among ``days`` that would have a bookable time if nothing were booked: what
    tells a fully booked day from a closed one (a day off, blocked, or past its last time)."""
    idle = [replace(member, busy=()) for member in staff]
    return {
        slot.start.astimezone(rules.zone).date()
        for day in days
        for slot in free_slots(
            idle,
            rules=rules,
            service=service,
            business_exceptions=business_exceptions,
            days=[day],
            now=now,
        )[:1]
    }


def check_start(
    staff: StaffAvailability,
    *,
    rules: Rules,
    service: ServiceSpec,
    business_exceptions: Mapping[date, Sequence[WorkInterval]],
    start: datetime,
    now: datetime,
    enforce_customer_rules: bool = True,
) -> int:
    """Return the seats left at ``start`` or raise why it cannot be booked.

    Customers get every rule; the owner (``enforce_customer_rules=False``) may book at any minute within
    working hours, without notice or horizon limits.
    """
    zone = rules.zone
    start = start.astimezone(UTC)
    end = start + timedelta(minutes=service.duration_minutes)
    day = start.astimezone(zone).date()
    if enforce_customer_rules:
        earliest = now + timedelta(minutes=rules.min_notice_minutes)
        if start < earliest:
            raise TooLate("the start is too soon", earliest=earliest)
        if day >= _horizon_end(now, rules):
            raise BeyondHorizon("the start is beyond the booking horizon", days=rules.horizon_days)
    local = start.astimezone(zone)
    minute = local.hour * 60 + local.minute
    on_minute = local.second == 0 and local.microsecond == 0
    fits = False
    for interval in day_intervals(staff, business_exceptions, day):
        if not (interval.start_minute <= minute < interval.end_minute):
            continue
        fits = end <= to_utc(day, interval.end_minute, zone)
        if enforce_customer_rules:
            # On the grid, and the first occurrence of an existing wall time: exactly the starts
            # grid_starts() offers, computed without listing them.
            fits = (
                fits
                and on_minute
                and (minute - interval.start_minute) % rules.step_minutes == 0
                and to_utc(day, minute, zone) == start
            )
        break
    if not fits:
        raise OutsideWorkingHours("the time is outside working hours", day=day)
    if _blocked(start, end, staff.blocks):
        raise SlotBlocked("the time is blocked")
    left = seats_left(start, rules, service, staff.busy)
    if left <= 0:
        raise SlotTaken("the time is already taken")
    return left
