"""iCalendar files of visits (services/scheduler/ics.py), read back with icalendar."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Component, Event, Timezone

from services.scheduler.ics import client_feed_ics, visit_ics
from shared.chain import Location
from shared.events.visits import VisitBooked

LA, NY = "America/Los_Angeles", "America/New_York"
NOW = datetime(2026, 2, 20, 18, 30, tzinfo=UTC)
CHAIN = "Veeva Chiropractic"

BEAVERTON = Location(
    id="beaverton",
    name="Beaverton",
    timezone=LA,
    hours={"mon": ["09:00-18:00"]},
    rooms=2,
    address="4800 SW Griffith Drive, Suite 120, Beaverton, OR 97005, United States of America",
    phone="+1 503 555 0100",
)
BROOKLYN = Location(
    id="brooklyn", name="Brooklyn", timezone=NY, hours={"mon": ["09:00-18:00"]}, rooms=1
)
LOCATIONS = {loc.id: loc for loc in (BEAVERTON, BROOKLYN)}


def make_visit(
    visit_id: str,
    local_start: datetime,
    *,
    location: Location = BEAVERTON,
    minutes: int = 60,
    sequence: int = 3,
) -> VisitBooked:
    start = local_start.replace(tzinfo=location.zone).astimezone(UTC)
    return VisitBooked(
        visit_id=visit_id,
        plan_id="plan-1",
        client_id="client-1",
        location_id=location.id,
        therapist_id="t-ana",
        room=1,
        start=start,
        end=start + timedelta(minutes=minutes),
        timezone=location.timezone,
        sequence=sequence,
        sessions_total=8,
        phase="release",
    )


def ics_of(visit: VisitBooked, *, revision: int = 0, cancelled: bool = False) -> bytes:
    return visit_ics(
        visit,
        location=LOCATIONS[visit.location_id],
        therapist_name="Ana",
        chain_name=CHAIN,
        now=NOW,
        revision=revision,
        cancelled=cancelled,
    )


def only_event(ics: bytes) -> Event:
    events = Calendar.from_ical(ics).walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, Event)
    return event


def offsets_by_rules(vtimezone: Component) -> tuple[list[datetime], list[timedelta]]:
    """The VTIMEZONE read as RFC 5545 says: each observance starts at DTSTART on
    the TZOFFSETFROM clock and sets TZOFFSETTO. Independent of any IANA database."""
    onsets = []
    for observance in vtimezone.walk():
        if observance.name in ("STANDARD", "DAYLIGHT"):
            local = observance.decoded("DTSTART")
            offset_from = observance.decoded("TZOFFSETFROM")
            onset = (local - offset_from).replace(tzinfo=UTC)
            onsets.append((onset, observance.decoded("TZOFFSETTO")))
    onsets.sort()
    return [o for o, _ in onsets], [offset for _, offset in onsets]


# --- the calendar ------------------------------------------------------------------------


def test_a_visit_file_is_a_published_calendar_with_one_event() -> None:
    calendar = Calendar.from_ical(ics_of(make_visit("v-1", datetime(2026, 3, 9, 10))))
    assert str(calendar["PRODID"]) == "-//clinicflow//scheduler//EN"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == [LA]
    assert len(calendar.walk("VEVENT")) == 1


@pytest.mark.parametrize(
    ("location", "local_start", "utc_start"),
    [
        # The Monday after the US spring change (Sunday 2026-03-08): PDT, UTC-7.
        (BEAVERTON, datetime(2026, 3, 9, 10), datetime(2026, 3, 9, 17, tzinfo=UTC)),
        # The Monday after the US autumn change (Sunday 2026-11-01): EST, UTC-5.
        (BROOKLYN, datetime(2026, 11, 2, 10), datetime(2026, 11, 2, 15, tzinfo=UTC)),
    ],
)
def test_start_keeps_local_wall_clock_and_zone_across_dst(
    location: Location, local_start: datetime, utc_start: datetime
) -> None:
    visit = make_visit("v-1", local_start, location=location)
    assert visit.start == utc_start
    event = only_event(ics_of(visit))
    assert event["DTSTART"].params["TZID"] == location.timezone
    assert event["DTSTART"].to_ical() == local_start.strftime("%Y%m%dT%H%M%S").encode()
    assert event["DTEND"].params["TZID"] == location.timezone
    assert event.decoded("DTSTART").astimezone(UTC) == visit.start
    assert event.decoded("DTEND").astimezone(UTC) == visit.end


@pytest.mark.parametrize(
    ("location", "local_start"),
    [(BEAVERTON, datetime(2026, 3, 9, 10)), (BROOKLYN, datetime(2026, 11, 2, 10))],
)
def test_the_vtimezone_alone_puts_the_visit_at_the_right_instant(
    location: Location, local_start: datetime
) -> None:
    """A calendar without the IANA database reads the rules shipped in the file."""
    visit = make_visit("v-1", local_start, location=location)
    calendar = Calendar.from_ical(ics_of(visit))
    (vtimezone,) = calendar.walk("VTIMEZONE")
    onsets, offsets = offsets_by_rules(vtimezone)
    event = only_event(ics_of(visit))
    wall = event.decoded("DTSTART").replace(tzinfo=None)
    # The offset in force at the (UTC) instant: the one of the latest onset before it.
    for guess in offsets:
        instant = (wall - guess).replace(tzinfo=UTC)
        if offsets[bisect_right(onsets, instant) - 1] == guess:
            assert instant == visit.start
            break
    else:
        pytest.fail("no observance of the VTIMEZONE covers the visit")


@pytest.mark.parametrize("tzid", [LA, NY, "Europe/Berlin", "Australia/Sydney", "Asia/Tokyo"])
def test_vtimezone_rules_match_the_iana_zone_every_hour_of_the_year(tzid: str) -> None:
    zone = ZoneInfo(tzid)
    location = BEAVERTON.model_copy(update={"id": "x", "timezone": tzid})
    visit = make_visit("v-1", datetime(2026, 6, 15, 10), location=location)
    ics = visit_ics(visit, location=location, therapist_name=None, chain_name=CHAIN, now=NOW)
    (vtimezone,) = Calendar.from_ical(ics).walk("VTIMEZONE")
    onsets, offsets = offsets_by_rules(vtimezone)
    instant = datetime(2026, 1, 1, 12, tzinfo=UTC)
    while instant < datetime(2026, 12, 31, 12, tzinfo=UTC):
        assert offsets[bisect_right(onsets, instant) - 1] == instant.astimezone(zone).utcoffset()
        instant += timedelta(minutes=30)


def test_us_spring_change_starts_at_two_on_the_standard_clock() -> None:
    """RFC 5545 3.6.5: DTSTART is the onset on the TZOFFSETFROM clock (02:00 PST)."""
    calendar = Calendar.from_ical(ics_of(make_visit("v-1", datetime(2026, 3, 9, 10))))
    (vtimezone,) = calendar.walk("VTIMEZONE")
    assert isinstance(vtimezone, Timezone)
    daylight = [o for o in vtimezone.walk() if o.name == "DAYLIGHT"]
    standard = [o for o in vtimezone.walk() if o.name == "STANDARD"]
    assert [o.decoded("DTSTART") for o in daylight] == [datetime(2026, 3, 8, 2)]
    assert datetime(2026, 11, 1, 2) in [o.decoded("DTSTART") for o in standard]
    assert daylight[0].decoded("TZOFFSETFROM") == timedelta(hours=-8)
    assert daylight[0].decoded("TZOFFSETTO") == timedelta(hours=-7)


# --- the event ---------------------------------------------------------------------------


def test_event_fields_say_where_when_and_with_whom() -> None:
    event = only_event(ics_of(make_visit("v-1", datetime(2026, 3, 9, 10)), revision=2))
    assert str(event["UID"]) == "v-1@clinicflow"
    assert event.decoded("DTSTAMP") == NOW
    assert event["DTSTAMP"].to_ical() == b"20260220T183000Z"
    assert str(event["SUMMARY"]) == "Therapy session 3 of 8 - Veeva Chiropractic, Beaverton"
    assert str(event["LOCATION"]) == f"Beaverton, {BEAVERTON.address}"
    assert "Therapist: Ana" in str(event["DESCRIPTION"])
    assert "+1 503 555 0100" in str(event["DESCRIPTION"])
    assert event.decoded("SEQUENCE") == 2
    assert str(event["STATUS"]) == "CONFIRMED"


def test_uid_is_stable_across_files_and_revisions() -> None:
    visit = make_visit("v-1", datetime(2026, 3, 9, 10))
    moved = visit.model_copy(update={"start": visit.start + timedelta(days=2)})
    first = only_event(ics_of(visit))
    later = only_event(
        visit_ics(
            moved,
            location=BEAVERTON,
            therapist_name="Ana",
            chain_name=CHAIN,
            now=NOW + timedelta(days=1),
            revision=1,
        )
    )
    assert first["UID"] == later["UID"] == "v-1@clinicflow"
    assert (first.decoded("SEQUENCE"), later.decoded("SEQUENCE")) == (0, 1)


def test_a_cancelled_visit_carries_status_cancelled() -> None:
    event = only_event(ics_of(make_visit("v-1", datetime(2026, 3, 9, 10)), cancelled=True))
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["TRANSP"]) == "TRANSPARENT"


def test_no_address_no_therapist_no_phone_leaves_them_out() -> None:
    visit = make_visit("v-1", datetime(2026, 11, 2, 10), location=BROOKLYN)
    ics = visit_ics(visit, location=BROOKLYN, therapist_name=None, chain_name=CHAIN, now=NOW)
    event = only_event(ics)
    assert str(event["LOCATION"]) == "Brooklyn"
    assert "DESCRIPTION" not in event


def test_the_event_holds_nothing_beyond_where_when_and_with_whom() -> None:
    """Minimum necessary: no field of the file can carry clinical detail."""
    event = only_event(ics_of(make_visit("v-1", datetime(2026, 3, 9, 10))))
    assert set(event.keys()) <= {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "SUMMARY",
        "LOCATION",
        "DESCRIPTION",
        "SEQUENCE",
        "STATUS",
        "TRANSP",
    }
    assert b"release" not in ics_of(make_visit("v-1", datetime(2026, 3, 9, 10)))  # the phase


def test_lines_are_folded_at_75_octets_with_crlf() -> None:
    ics = ics_of(make_visit("v-1", datetime(2026, 3, 9, 10)))
    lines = ics.split(b"\r\n")
    assert b"\n" not in ics.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines)  # the long address was folded


def test_a_visit_and_a_location_that_do_not_match_are_refused() -> None:
    visit = make_visit("v-1", datetime(2026, 3, 9, 10))
    with pytest.raises(ValueError, match="brooklyn"):
        visit_ics(visit, location=BROOKLYN, therapist_name=None, chain_name=CHAIN, now=NOW)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        visit_ics(
            make_visit("v-1", datetime(2026, 3, 9, 10)),
            location=BEAVERTON,
            therapist_name=None,
            chain_name=CHAIN,
            now=NOW.replace(tzinfo=None),
        )


# --- the client's feed -------------------------------------------------------------------


def feed_visits() -> list[VisitBooked]:
    return [
        make_visit("v-3", datetime(2026, 11, 2, 10), location=BROOKLYN, sequence=3),
        make_visit("v-1", datetime(2026, 3, 2, 10), sequence=1),
        make_visit("v-2", datetime(2026, 3, 9, 10), sequence=2),
    ]


def test_the_feed_holds_every_visit_in_start_order() -> None:
    ics = client_feed_ics(
        feed_visits(),
        locations=LOCATIONS,
        therapist_names={"t-ana": "Ana"},
        chain_name=CHAIN,
        now=NOW,
        cancelled={"v-2"},
        revisions={"v-2": 1},
    )
    calendar = Calendar.from_ical(ics)
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["v-1@clinicflow", "v-2@clinicflow", "v-3@clinicflow"]
    assert [str(e["STATUS"]) for e in events] == ["CONFIRMED", "CANCELLED", "CONFIRMED"]
    assert [e.decoded("SEQUENCE") for e in events] == [0, 1, 0]
    assert [e["DTSTART"].params["TZID"] for e in events] == [LA, LA, NY]
    assert [e.decoded("DTSTART").hour for e in events] == [10, 10, 10]
    assert str(calendar["METHOD"]) == "PUBLISH"


def test_the_feed_has_one_vtimezone_per_zone_used() -> None:
    visits = feed_visits()
    ics = client_feed_ics(
        visits, locations=LOCATIONS, therapist_names={}, chain_name=CHAIN, now=NOW
    )
    calendar = Calendar.from_ical(ics)
    assert sorted(str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")) == [LA, NY]
    assert calendar.get_missing_tzids() == set()


def test_an_empty_feed_is_a_valid_calendar() -> None:
    ics = client_feed_ics([], locations=LOCATIONS, therapist_names={}, chain_name=CHAIN, now=NOW)
    calendar = Calendar.from_ical(ics)
    assert calendar.walk("VEVENT") == []
    assert str(calendar["PRODID"]) == "-//clinicflow//scheduler//EN"


def test_a_feed_visit_at_an_unknown_location_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown location"):
        client_feed_ics(
            feed_visits(),
            locations={"beaverton": BEAVERTON},
            therapist_names={},
            chain_name=CHAIN,
            now=NOW,
        )
