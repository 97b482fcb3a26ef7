"""Daylight-saving weeks through the scheduler's handlers and HTTP API: a plan
booked across the US spring and fall changes, at the Pacific and the Eastern
location, keeps its visits at the same wall-clock time - over HTTP, in its
``visit.booked`` events, in the .ics file - while the UTC instant moves by the
hour the clock changed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import icalendar
import pytest

from shared.events.plans import SchedulingNeeds
from tests.integration.test_scheduler_visits import (  # noqa: F401 (the fixture)
    ADMIN,
    Scheduler,
    a_plan,
    booked,
    scheduler,
)

pytestmark = pytest.mark.integration

# (location, its zone, the Monday the plan is booked on, the day the clock changes,
#  the location's first hour on a Tuesday, UTC offsets before and after)
WEEKS = [
    ("beaverton", "America/Los_Angeles", date(2027, 3, 8), date(2027, 3, 14), 9, -8, -7),
    ("beaverton", "America/Los_Angeles", date(2027, 11, 1), date(2027, 11, 7), 9, -7, -8),
    ("brooklyn", "America/New_York", date(2027, 3, 8), date(2027, 3, 14), 8, -5, -4),
    ("brooklyn", "America/New_York", date(2027, 11, 1), date(2027, 11, 7), 8, -4, -5),
]


@pytest.mark.parametrize(
    ("location_id", "zone_name", "monday", "change", "opens", "before", "after"),
    WEEKS,
    ids=["los-angeles-march", "los-angeles-november", "new-york-march", "new-york-november"],
)
async def test_visits_keep_their_wall_clock_time_across_the_change(
    scheduler: Scheduler,  # noqa: F811 (the imported fixture)
    location_id: str,
    zone_name: str,
    monday: date,
    change: date,
    opens: int,
    before: int,
    after: int,
) -> None:
    zone = ZoneInfo(zone_name)
    scheduler.clock.at = datetime.combine(monday, time(8), tzinfo=zone).astimezone(UTC)
    # Tuesday mornings only: the first slot each week is opening time
    plan = a_plan(f"dst-{location_id}").model_copy(
        update={
            "location_id": location_id,
            "scheduling": SchedulingNeeds(required_skills=["nmt"], days=["tue"], times=["morning"]),
        }
    )
    visits = booked(await scheduler.receive(plan))
    assert len(visits) == plan.sessions_total >= 3

    answer = await scheduler.http.get(f"/v1/clients/{plan.client_id}/visits", headers=ADMIN)
    shown = answer.json()["visits"]
    local = [datetime.fromisoformat(v["local_start"]) for v in shown]
    assert all(t.weekday() == 1 and t.time() == time(opens) for t in local), local
    offsets = [t.utcoffset().total_seconds() / 3600 for t in local]  # type: ignore[union-attr]
    assert offsets == [before if t.date() < change else after for t in local]
    assert before in offsets and after in offsets  # the course spans the change
    # the UTC instant moves by the hour the clock moved; the wall clock does not
    utc_hours = {datetime.fromisoformat(v["start"]).astimezone(UTC).hour for v in shown}
    assert utc_hours == {opens - before, opens - after}

    # the events the consumer publishes carry the same instants
    assert [datetime.fromisoformat(v["start"]) for v in shown] == [v.start for v in visits]

    # and in the calendar file, as local time with the zone's id
    first_after = next(v for v in visits if v.start.astimezone(zone).date() > change)
    ics = await scheduler.http.get(f"/v1/visits/{first_after.visit_id}.ics", headers=ADMIN)
    event = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")[0]
    assert event["DTSTART"].params["TZID"] == zone_name
    assert event.decoded("DTSTART").replace(tzinfo=None).time() == time(opens)
    assert event.decoded("DTSTART").astimezone(UTC) == first_after.start

    # the day of the change shows both offsets on the location's calendar
    day = await scheduler.http.get(
        f"/v1/locations/{location_id}/calendar", params={"date": change.isoformat()}, headers=ADMIN
    )
    hours = [f"{h:+03d}:00" for h in (before, after)]
    assert day.json()["utc_offsets"] == hours
