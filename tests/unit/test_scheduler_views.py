"""What the front desk reads beside ids (pure builders): the client's, therapist's,
location's and room's names, the visit's status, "3 of 8" and the cadence note, on
the day's calendar, a therapist's week, the client's visits and the waitlist."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.scheduler.api import visit_view
from services.scheduler.backfill import OfferRecord, OfferState, WaitingEntry, set_waiting
from services.scheduler.calendar_view import (
    Names,
    location_day,
    therapist_week,
    week_bounds,
    week_of,
)
from services.scheduler.directory import plain
from services.scheduler.store import CalendarChange
from services.scheduler.waitlist_api import offer_view, waiting_plan
from shared.events.visits import BookingWaitlisted, VisitBooked, WaitlistOffered
from tests.unit.test_booking import make_plan
from tests.unit.test_scheduler_calendar_view import (
    MONDAY,
    NY,
    make_location,
    make_therapist,
    make_visit,
    staff,
)

NAMES = Names(
    clients={"client-1": "Jo Rivera", "client-2": None},
    therapists={"t-ana": "Ana Ruiz", "t-dev": "Dev Patel"},
    locations={"beaverton": "Beaverton", "brooklyn": "Brooklyn Heights"},
)
NOTE = "booked Tuesday instead of Monday: the client's days are tue and thu"
SINCE = datetime(2026, 3, 2, 17, tzinfo=UTC)


def with_(visit: VisitBooked, **update: object) -> VisitBooked:
    return visit.model_copy(update=update)


# --- the day's calendar ------------------------------------------------------------------


def test_a_day_visit_shows_names_room_status_place_in_the_plan_and_cadence_note() -> None:
    location = make_location(rooms=3)
    visits = [
        with_(make_visit("v-1", MONDAY, time(10), room=2), cadence_note=NOTE),
        make_visit("v-2", MONDAY, time(12), client_id="client-2"),
        make_visit("v-3", MONDAY, time(14), client_id="client-3"),
    ]
    view = location_day(
        plain(location, staff(location, make_therapist("t-ana"))),
        MONDAY,
        visits=visits,
        statuses={"v-1": "confirmed", "v-2": "completed", "v-3": "no_show"},
        names=NAMES,
    )
    shown = {v["visit_id"]: v for v in view.model_dump(mode="json")["therapists"][0]["visits"]}
    first = shown["v-1"]
    assert first["client_name"] == "Jo Rivera"
    assert first["therapist_name"] == "Ana Ruiz"
    assert (first["location_id"], first["location_name"]) == ("beaverton", "Beaverton")
    assert (first["room"], first["room_name"]) == (2, "Room 2")
    assert (first["sequence"], first["sessions_total"], first["sequence_label"]) == (2, 6, "2 of 6")
    assert first["cadence_note"] == NOTE
    assert {vid: v["status"] for vid, v in shown.items()} == {
        "v-1": "confirmed",
        "v-2": "completed",
        "v-3": "no_show",
    }
    # a client the scheduler was never told the name of, or a name not known: null
    assert shown["v-2"]["client_name"] is None and shown["v-3"]["client_name"] is None
    assert shown["v-2"]["cadence_note"] is None
    assert [(r.room, r.room_name) for r in view.rooms] == [
        (1, "Room 1"),
        (2, "Room 2"),
        (3, "Room 3"),
    ]


def test_without_names_the_day_names_its_own_therapists_and_location() -> None:
    location = make_location()
    view = location_day(
        plain(location, staff(location, make_therapist("t-ana"))),
        MONDAY,
        visits=[make_visit("v-1", MONDAY, time(10))],
    )
    visit = view.therapists[0].visits[0]
    assert (visit.therapist_name, visit.location_name, visit.client_name) == (
        "Ana",
        "Beaverton",
        None,
    )
    assert visit.status == "booked"


# --- a therapist's week ------------------------------------------------------------------


def test_the_week_holds_seven_local_days_and_visits_at_every_location() -> None:
    brooklyn = make_location(location_id="brooklyn", timezone=NY)
    tuesday, sunday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=6)
    visits = [
        make_visit("v-ny", tuesday, time(9), therapist_id="t-dev", location=brooklyn, room=2),
        make_visit("v-or", MONDAY + timedelta(days=3), time(10), therapist_id="t-dev"),
        # Sunday 23:30 in Oregon is Monday in UTC: still the Sunday of this week
        make_visit("v-late", sunday, time(23, 30), therapist_id="t-dev"),
        make_visit("v-other", tuesday, time(10), therapist_id="t-ana"),
        make_visit("v-next-week", MONDAY + timedelta(days=7), time(10), therapist_id="t-dev"),
        make_visit("v-last-week", MONDAY - timedelta(days=1), time(10), therapist_id="t-dev"),
    ]
    week = therapist_week(
        "t-dev",
        MONDAY + timedelta(days=2),  # any day of the week gives the same week
        visits=visits,
        statuses={"v-ny": "confirmed"},
        offered={"v-or"},
        names=NAMES,
    )
    assert (week.therapist_name, week.week, week.first_day, week.last_day) == (
        "Dev Patel",
        "2026-W11",
        MONDAY,
        sunday,
    )
    assert [d.day for d in week.days] == [MONDAY + timedelta(days=n) for n in range(7)]
    assert {d.day: [v.visit_id for v in d.visits] for d in week.days if d.visits} == {
        tuesday: ["v-ny"],
        MONDAY + timedelta(days=3): ["v-or"],
        sunday: ["v-late"],
    }
    ny = week.days[1].visits[0].model_dump(mode="json")
    assert ny["start"] == "2026-03-10T09:00:00-04:00"  # on Brooklyn's clock
    assert (ny["location_name"], ny["room_name"], ny["status"]) == (
        "Brooklyn Heights",
        "Room 2",
        "confirmed",
    )
    assert (ny["client_name"], ny["sequence_label"]) == ("Jo Rivera", "2 of 6")
    offered = week.days[3].visits[0]
    assert offered.offered and offered.location_name == "Beaverton"


def test_an_iso_week_across_the_new_year() -> None:
    assert week_of(date(2027, 1, 1)) == (date(2026, 12, 28), date(2027, 1, 3))
    week = therapist_week("t-ana", date(2027, 1, 3), visits=[])
    assert (week.week, week.therapist_name) == ("2026-W53", None)
    assert len(week.days) == 7 and all(not d.visits for d in week.days)


def test_the_week_bounds_hold_the_week_in_every_time_zone() -> None:
    start, end = week_bounds(MONDAY)
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "America/Los_Angeles", "Asia/Kolkata"):
        tz = ZoneInfo(zone)
        first = datetime.combine(MONDAY, time(), tzinfo=tz)
        last = datetime.combine(MONDAY + timedelta(days=6), time(23, 59), tzinfo=tz)
        assert start <= first and last < end, zone


# --- the client's visits -----------------------------------------------------------------


def test_the_clients_visit_shows_names_status_and_cadence_note() -> None:
    visit = with_(make_visit("v-1", MONDAY, time(10), room=3), cadence_note=NOTE)
    shown = visit_view(visit, "booked", confirmed=True, names=NAMES).model_dump(mode="json")
    assert shown["status"] == "confirmed"
    assert shown["local_start"] == "2026-03-09T10:00:00-07:00"
    assert (shown["client_name"], shown["therapist_name"], shown["location_name"]) == (
        "Jo Rivera",
        "Ana Ruiz",
        "Beaverton",
    )
    assert (shown["room_name"], shown["sequence_label"], shown["cadence_note"]) == (
        "Room 3",
        "2 of 6",
        NOTE,
    )
    for state in ("cancelled", "completed", "no_show"):
        assert visit_view(visit, state, confirmed=False, names=NAMES).status == state
    # confirmed only while booked: a cancelled visit shows cancelled
    assert visit_view(visit, "cancelled", confirmed=True, names=NAMES).status == "cancelled"
    assert visit_view(visit, "booked", confirmed=False, names=Names()).client_name is None


# --- the waitlist ------------------------------------------------------------------------


def waitlisted(sequence: int, *, cadence_note: str | None = None) -> BookingWaitlisted:
    return BookingWaitlisted(
        plan_id="plan-1",
        client_id="client-1",
        location_id="beaverton",
        sequence=sequence,
        sessions_total=8,
        reason="no_slot",
        detail="no therapist with fmm is free on the client's days",
        cadence_note=cadence_note,
    )


def an_offer(state: OfferState = "open") -> OfferRecord:
    start = datetime(2026, 3, 10, 17, tzinfo=UTC)
    offer = WaitlistOffered(
        offer_id="offer-1",
        visit_id="v-offered",
        freed_visit_id="v-freed",
        plan_id="plan-1",
        client_id="client-1",
        location_id="beaverton",
        therapist_id="t-ana",
        room=2,
        start=start,
        end=start + timedelta(hours=1),
        timezone="America/Los_Angeles",
        sequence=3,
        sessions_total=8,
        hold_until=start - timedelta(hours=20),
        offered_at=start - timedelta(hours=22),
    )
    return OfferRecord(slot_id="slot-1", offer=offer, state=state)


def test_the_waiting_entry_keeps_why_the_plan_waits() -> None:
    sample_plan = make_plan()
    change = CalendarChange()
    later = waitlisted(4)
    first = waitlisted(3, cadence_note=NOTE)
    set_waiting(change, sample_plan, [later, first], now=SINCE)
    raw = change.waiting[(sample_plan.location_id, sample_plan.plan_id)]
    assert raw is not None
    entry = WaitingEntry.model_validate_json(raw)
    assert (entry.sequence, entry.reason, entry.detail, entry.cadence_note) == (
        3,
        "no_slot",
        first.detail,
        NOTE,
    )


def test_an_entry_stored_before_the_reasons_were_kept_still_reads() -> None:
    old = (
        '{"plan_id": "plan-1", "plan_version": 1, "client_id": "client-1", '
        '"location_id": "beaverton", "sequence": 3, "sessions_total": 8, '
        '"since": "2026-03-02T17:00:00Z"}'
    )
    entry = WaitingEntry.model_validate_json(old)
    shown = waiting_plan(entry, None, NAMES)
    assert (shown.detail, shown.cadence_note, shown.sequence_label) == (None, None, "3 of 8")


def test_a_waiting_plan_shows_the_client_why_it_waits_and_its_open_offer() -> None:
    entry = WaitingEntry(
        plan_id="plan-1",
        plan_version=2,
        client_id="client-1",
        location_id="beaverton",
        sequence=3,
        sessions_total=8,
        since=SINCE,
        reason="no_slot",
        detail="no therapist with fmm is free on the client's days",
        cadence_note=NOTE,
    )
    shown = waiting_plan(entry, an_offer(), NAMES).model_dump(mode="json")
    assert (shown["client_name"], shown["sequence_label"]) == ("Jo Rivera", "3 of 8")
    assert (shown["detail"], shown["cadence_note"]) == (entry.detail, NOTE)
    assert shown["open_offer"] == "offer-1"
    offer = shown["offer"]
    assert (offer["therapist_name"], offer["location_name"], offer["room_name"]) == (
        "Ana Ruiz",
        "Beaverton",
        "Room 2",
    )
    assert (offer["client_name"], offer["sequence_label"]) == ("Jo Rivera", "3 of 8")
    assert offer["local_start"] == "2026-03-10T10:00:00-07:00"
    closed = waiting_plan(entry, an_offer("declined"), NAMES)
    assert closed.open_offer is None and closed.offer is None


def test_an_offer_names_what_it_holds() -> None:
    shown = offer_view(an_offer("accepted"), ["v-offered", "v-4"], Names())
    assert (shown.state, shown.booked, shown.room_name, shown.sequence_label) == (
        "accepted",
        ["v-offered", "v-4"],
        "Room 2",
        "3 of 8",
    )
    assert shown.client_name is None and shown.therapist_name is None
