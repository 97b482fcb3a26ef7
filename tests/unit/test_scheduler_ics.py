"""iCalendar files of visits (services/scheduler/ics.py), read back with icalendar."""

from __future__ import annotations

import itertools
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar, Component, Event, Timezone

from services.scheduler.ics import client_feed_ics, sequence, visit_ics
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
    email="beaverton@veeva.example",
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
    assert itip_problems(calendar) == []


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
        "ORGANIZER",
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
    # v-2 was moved once, then cancelled
    assert [e.decoded("SEQUENCE") for e in events] == [0, 2, 0]
    assert [e["DTSTART"].params["TZID"] for e in events] == [LA, LA, NY]
    assert [e.decoded("DTSTART").hour for e in events] == [10, 10, 10]
    # Brooklyn has no address to organize from: no iTIP method for the whole feed
    assert "METHOD" not in calendar
    assert ["ORGANIZER" in e for e in events] == [True, True, False]


def test_a_feed_of_locations_with_addresses_is_published() -> None:
    brooklyn = BROOKLYN.model_copy(update={"email": "brooklyn@veeva.example"})
    ics = client_feed_ics(
        feed_visits(),
        locations={**LOCATIONS, "brooklyn": brooklyn},
        therapist_names={},
        chain_name=CHAIN,
        now=NOW,
        cancelled={"v-2"},
    )
    calendar = Calendar.from_ical(ics)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert itip_problems(calendar) == []


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


# --- updates calendars apply (RFC 5546, iTIP) ---------------------------------------------

# RFC 5546 3.2.1 (PUBLISH) and 3.2.5 (CANCEL), VEVENT: the properties each method
# requires (exactly once), those it allows at most once, the ones it forbids, and the
# STATUS values it takes
ITIP_VEVENT = {
    "PUBLISH": {
        "required": {"DTSTAMP", "DTSTART", "ORGANIZER", "SUMMARY", "UID"},
        "at_most_once": {"SEQUENCE", "STATUS", "DTEND", "LOCATION", "DESCRIPTION", "TRANSP"},
        "forbidden": {"ATTENDEE"},
        "status": {"TENTATIVE", "CONFIRMED", "CANCELLED"},
    },
    "CANCEL": {
        "required": {"DTSTAMP", "ORGANIZER", "SEQUENCE", "UID"},
        "at_most_once": {"STATUS", "DTSTART", "DTEND", "SUMMARY", "LOCATION", "DESCRIPTION"},
        "forbidden": set(),
        "status": {"CANCELLED"},
    },
}


def itip_problems(calendar: Calendar) -> list[str]:
    """What makes ``calendar`` other than a valid iTIP message, by RFC 5546's tables."""
    method = str(calendar.get("METHOD", ""))
    rules = ITIP_VEVENT.get(method)
    if rules is None:
        return [f"METHOD {method!r} is none of {sorted(ITIP_VEVENT)}"]
    problems = [f"{name} missing" for name in ("PRODID", "VERSION") if name not in calendar]
    events = calendar.walk("VEVENT")
    if not events:
        problems.append("no VEVENT")
    if method == "CANCEL" and len({str(e["UID"]) for e in events}) > 1:
        problems.append("CANCEL of more than one UID")
    for event in events:
        names = [name for name, _ in event.property_items(recursive=False)][1:-1]
        for name in rules["required"] | rules["at_most_once"]:
            if names.count(name) > 1:
                problems.append(f"{name} more than once")
        problems += [f"{name} missing" for name in rules["required"] - set(names)]
        problems += [f"{name} not allowed" for name in rules["forbidden"] & set(names)]
        if "STATUS" in event and str(event["STATUS"]) not in rules["status"]:
            problems.append(f"STATUS {event['STATUS']} in {method}")
        organizer = event.get("ORGANIZER")
        if organizer is not None and not str(organizer).startswith("mailto:"):
            problems.append(f"ORGANIZER {organizer} is no calendar address")
    return problems


def test_sequence_grows_from_booked_through_moves_to_cancelled() -> None:
    visit = make_visit("v-1", datetime(2026, 3, 9, 10))
    booked = only_event(ics_of(visit))
    moved = only_event(ics_of(visit, revision=1))
    moved_again = only_event(ics_of(visit, revision=2))
    cancelled = only_event(ics_of(visit, revision=2, cancelled=True))
    sequences = [e.decoded("SEQUENCE") for e in (booked, moved, moved_again, cancelled)]
    assert sequences == [0, 1, 2, 3]
    # a visit cancelled as booked is above its booking too
    assert only_event(ics_of(visit, cancelled=True)).decoded("SEQUENCE") == 1


@given(moves=st.integers(min_value=0, max_value=500))
def test_every_change_is_above_the_one_before(moves: int) -> None:
    history = [sequence(n, cancelled=False) for n in range(moves + 1)]
    history.append(sequence(moves, cancelled=True))
    assert all(a < b for a, b in itertools.pairwise(history))


def test_the_location_organizes_its_visits() -> None:
    event = only_event(ics_of(make_visit("v-1", datetime(2026, 3, 9, 10))))
    assert str(event["ORGANIZER"]) == "mailto:beaverton@veeva.example"
    assert event["ORGANIZER"].params["CN"] == "Veeva Chiropractic, Beaverton"
    assert "ATTENDEE" not in event  # PUBLISH has none; the client is not named


def test_a_cancelled_visit_file_is_an_itip_cancel() -> None:
    ics = ics_of(make_visit("v-1", datetime(2026, 3, 9, 10)), revision=1, cancelled=True)
    calendar = Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED" and event.decoded("SEQUENCE") == 2
    assert str(event["UID"]) == "v-1@clinicflow"
    assert itip_problems(calendar) == []


def test_without_an_address_there_is_neither_organizer_nor_method() -> None:
    """iTIP needs an ORGANIZER with an address: without one the file claims no method,
    and stays an RFC 5545 calendar its UID and SEQUENCE update."""
    for cancelled in (False, True):
        visit = make_visit("v-1", datetime(2026, 11, 2, 10), location=BROOKLYN)
        ics = visit_ics(
            visit,
            location=BROOKLYN,
            therapist_name=None,
            chain_name=CHAIN,
            now=NOW,
            revision=1,
            cancelled=cancelled,
        )
        calendar = Calendar.from_ical(ics)
        (event,) = calendar.walk("VEVENT")
        assert "METHOD" not in calendar and "ORGANIZER" not in event
        assert event.decoded("SEQUENCE") == (2 if cancelled else 1)


def test_the_checker_finds_what_itip_forbids() -> None:
    """The table check above fails where RFC 5546 says a message is invalid."""
    visit = make_visit("v-1", datetime(2026, 3, 9, 10))
    calendar = Calendar.from_ical(ics_of(visit, cancelled=True))
    (event,) = calendar.walk("VEVENT")
    del event["ORGANIZER"]
    event["STATUS"] = "CONFIRMED"
    assert set(itip_problems(calendar)) == {"ORGANIZER missing", "STATUS CONFIRMED in CANCEL"}
    del calendar["METHOD"]
    assert itip_problems(calendar) == ["METHOD '' is none of ['CANCEL', 'PUBLISH']"]
