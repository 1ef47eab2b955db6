"""The pure slot engine: property tests over random schedules, and DST days done by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenant_bot.booking import slots as engine
from tenant_bot.booking.errors import InvalidInput, SlotUnavailable
from tenant_bot.booking.models import WorkInterval

ZONES = ["Europe/Moscow", "Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"]
# Around DST changes in 2010 (Moscow still had DST then) and 2024 (Berlin, New York).
BASE_DAYS = [
    date(2010, 3, 26),
    date(2010, 10, 29),
    date(2024, 3, 29),
    date(2024, 10, 25),
    date(2024, 3, 8),
]


@st.composite
def day_intervals(draw: st.DrawFn) -> list[WorkInterval]:
    points = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
    pairs = list(zip(points[::2], points[1::2], strict=False))
    return [WorkInterval(a * 15, b * 15) for a, b in pairs if a < b]


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    base = draw(st.sampled_from(BASE_DAYS))
    now = datetime.combine(base, datetime.min.time(), UTC) + timedelta(
        minutes=draw(st.integers(0, 2 * 1440))
    )
    rules = engine.Rules(
        zone=zone,
        step_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])),
        buffer_before_minutes=draw(st.sampled_from([0, 5, 15, 30])),
        buffer_after_minutes=draw(st.sampled_from([0, 10, 15, 60])),
        min_notice_minutes=draw(st.integers(0, 1440)),
        horizon_days=draw(st.integers(1, 6)),
    )
    service = engine.ServiceSpec(
        1, draw(st.sampled_from([15, 30, 45, 60, 90, 150])), draw(st.sampled_from([1, 1, 3]))
    )
    weekly = {wd: draw(day_intervals()) for wd in range(7)}
    days = [base + timedelta(days=i) for i in range(6)]
    exceptions = {
        d: draw(day_intervals()) for d in draw(st.sets(st.sampled_from(days), max_size=2))
    }
    business = {d: draw(day_intervals()) for d in draw(st.sets(st.sampled_from(days), max_size=2))}
    start0 = datetime.combine(base, datetime.min.time(), UTC)

    def ranges(max_size: int) -> list[tuple[datetime, datetime]]:
        out = []
        for offset, length in draw(
            st.lists(st.tuples(st.integers(0, 6 * 96), st.integers(1, 16)), max_size=max_size)
        ):
            out.append(
                (
                    start0 + timedelta(minutes=15 * offset),
                    start0 + timedelta(minutes=15 * (offset + length)),
                )
            )
        return out

    busy = [
        engine.Busy(
            a,
            b,
            (draw(st.sampled_from([1, 2])), a + timedelta(minutes=rules.buffer_before_minutes)),
        )
        for a, b in ranges(12)
    ]
    staff = engine.StaffAvailability(7, weekly, exceptions, ranges(4), busy)
    return {
        "rules": rules,
        "service": service,
        "staff": staff,
        "business": business,
        "days": days,
        "now": now,
    }


def _intervals_for(sc: dict, day: date) -> list[WorkInterval]:
    staff = sc["staff"]
    if day in staff.exceptions:
        return staff.exceptions[day]
    if day in sc["business"]:
        return sc["business"][day]
    return staff.weekly.get(day.weekday(), [])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_offered_slots_obey_every_rule(sc: dict) -> None:
    rules: engine.Rules = sc["rules"]
    service: engine.ServiceSpec = sc["service"]
    staff: engine.StaffAvailability = sc["staff"]
    now: datetime = sc["now"]
    zone = rules.zone
    offered = engine.free_slots(
        [staff],
        rules=rules,
        service=service,
        business_exceptions=sc["business"],
        days=sc["days"],
        now=now,
    )
    today = now.astimezone(zone).date()
    for slot in offered:
        local = slot.start.astimezone(zone)
        assert slot.end - slot.start == timedelta(minutes=service.duration_minutes)
        # notice and horizon
        assert slot.start >= now + timedelta(minutes=rules.min_notice_minutes)
        assert today <= local.date() < today + timedelta(days=rules.horizon_days)
        # inside one working interval of that local day (day off = no intervals), on its grid
        minute = local.hour * 60 + local.minute
        fitting = [
            i
            for i in _intervals_for(sc, local.date())
            if i.start_minute <= minute
            and slot.end <= engine.to_utc(local.date(), i.end_minute, zone)
            and (minute - i.start_minute) % rules.step_minutes == 0
        ]
        assert fitting, (slot, local)
        # never over a blocked period
        assert not any(slot.start < b1 and b0 < slot.end for b0, b1 in staff.blocks)
        # never over another session's occupied range; seats of its own session below capacity
        occ = (
            slot.start - timedelta(minutes=rules.buffer_before_minutes),
            slot.end + timedelta(minutes=rules.buffer_after_minutes),
        )
        clashing = [b for b in staff.busy if occ[0] < b.end and b.start < occ[1]]
        assert all(b.session == (service.service_id, slot.start) for b in clashing)
        assert len(clashing) < service.capacity
        assert slot.seats_left == service.capacity - len(clashing)
        # the booking-time check agrees with the listing
        engine.check_start(
            staff,
            rules=rules,
            service=service,
            business_exceptions=sc["business"],
            start=slot.start,
            now=now,
        )


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.integers(0, 6 * 96))
def test_times_not_offered_are_refused(sc: dict, quarter: int) -> None:
    rules: engine.Rules = sc["rules"]
    now: datetime = sc["now"]
    offered = {
        s.start
        for s in engine.free_slots(
            [sc["staff"]],
            rules=rules,
            service=sc["service"],
            business_exceptions=sc["business"],
            days=sc["days"],
            now=now,
        )
    }
    start = datetime.combine(sc["days"][0], datetime.min.time(), UTC) + timedelta(
        minutes=15 * quarter
    )
    local_day = start.astimezone(rules.zone).date()
    if start in offered or local_day not in sc["days"]:
        return
    with pytest.raises(SlotUnavailable):
        engine.check_start(
            sc["staff"],
            rules=rules,
            service=sc["service"],
            business_exceptions=sc["business"],
            start=start,
            now=now,
        )


def _local_starts(
    zone_name: str, day: date, interval: str, *, step: int = 60, duration: int = 60
) -> list[datetime]:
    zone = ZoneInfo(zone_name)
    staff = engine.StaffAvailability(1, {day.weekday(): [WorkInterval.parse(interval)]})
    rules = engine.Rules(zone=zone, step_minutes=step, horizon_days=30)
    now = datetime.combine(day - timedelta(days=1), datetime.min.time(), UTC)
    offered = engine.staff_slots(
        staff,
        rules=rules,
        service=engine.ServiceSpec(1, duration),
        business_exceptions={},
        day=day,
        now=now,
    )
    for slot in offered:
        assert slot.end - slot.start == timedelta(
            minutes=duration
        )  # real minutes, across the change
    return [slot.start.astimezone(zone) for slot in offered]


@pytest.mark.parametrize(
    ("zone", "day"),
    [("Europe/Moscow", date(2010, 3, 28)), ("Europe/Berlin", date(2024, 3, 31))],
)
def test_spring_forward_skips_the_missing_hour(zone: str, day: date) -> None:
    gap_hour = 2
    starts = _local_starts(zone, day, "00:00-06:00")
    assert [s.hour for s in starts] == [h for h in range(6) if h != gap_hour]
    before, after = starts[0].utcoffset(), starts[-1].utcoffset()
    assert after - before == timedelta(hours=1)
    # 01:00 and 03:00 local are one real hour apart: the hour at 02:00 never existed
    assert starts[2].astimezone(UTC) - starts[1].astimezone(UTC) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "day"),
    [("Europe/Moscow", date(2010, 10, 31)), ("Europe/Berlin", date(2024, 10, 27))],
)
def test_fall_back_offers_each_wall_time_once(zone: str, day: date) -> None:
    starts = _local_starts(zone, day, "00:00-06:00")
    assert [s.hour for s in starts] == [0, 1, 2, 3, 4, 5]
    assert starts[0].utcoffset() - starts[-1].utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "day", "utc_hour"),
    [
        ("Europe/Moscow", date(2010, 3, 27), 6),  # MSK +3, the day before the change
        ("Europe/Moscow", date(2010, 3, 28), 5),  # MSD +4
        ("Europe/Moscow", date(2010, 10, 31), 6),  # back to +3
        ("Europe/Berlin", date(2024, 3, 30), 8),  # CET +1
        ("Europe/Berlin", date(2024, 3, 31), 7),  # CEST +2
        ("Europe/Berlin", date(2024, 10, 27), 8),
    ],
)
def test_working_day_is_in_local_time_on_dst_days(zone: str, day: date, utc_hour: int) -> None:
    starts = _local_starts(zone, day, "09:00-18:00", step=30)
    assert starts[0].hour == 9 and starts[0].astimezone(UTC).hour == utc_hour
    assert starts[-1].hour == 17 and len(starts) == 17


def test_business_exception_and_staff_exception_precedence() -> None:
    day = date(2030, 1, 7)
    zone = ZoneInfo("Europe/Moscow")
    weekly = {day.weekday(): [WorkInterval.parse("09:00-18:00")]}
    rules = engine.Rules(zone=zone, step_minutes=60)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    spec = engine.ServiceSpec(1, 60)
    holiday = {day: []}
    closed = engine.StaffAvailability(1, weekly)
    assert (
        engine.staff_slots(
            closed, rules=rules, service=spec, business_exceptions=holiday, day=day, now=now
        )
        == []
    )
    on_duty = engine.StaffAvailability(1, weekly, {day: [WorkInterval.parse("10:00-12:00")]})
    got = engine.staff_slots(
        on_duty, rules=rules, service=spec, business_exceptions=holiday, day=day, now=now
    )
    assert [s.start.astimezone(zone).hour for s in got] == [10, 11]


def test_work_interval_parsing() -> None:
    assert WorkInterval.parse("9:00-24:00") == WorkInterval(540, 1440)
    assert str(WorkInterval(540, 1440)) == "09:00-24:00"
    for bad in ("18:00-09:00", "25:00-26:00", "nine to five", "09:60-10:00"):
        with pytest.raises(InvalidInput):
            WorkInterval.parse(bad)
