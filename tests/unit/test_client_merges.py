"""The pure rules of following a client merge and of reading per record: which ids
resolve to whom, how an event is re-addressed, which plan is current, whose
contact wins, and which records a location's key sees."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi import HTTPException

from services.notifier.delivery import Consent, Contact, merged_contact
from services.planner import merging, views
from shared.aliases import alias_writes, client_of, rehomed
from shared.auth import Principal
from shared.events import IntakeSubmitted, VisitBooked
from shared.events.intake import ClientRecord, Complaint, Health, Preferences, Screening
from shared.routes import in_scope

AT = datetime(2027, 3, 1, 16, tzinfo=UTC)


def visit(client_id: str) -> VisitBooked:
    return VisitBooked(
        visit_id="v1",
        plan_id="p1",
        client_id=client_id,
        location_id="beaverton",
        therapist_id="t-ana",
        room=1,
        start=AT,
        end=AT,
        timezone="America/Los_Angeles",
        sequence=1,
        sessions_total=6,
    )


def test_an_event_is_readdressed_to_the_survivor_and_nothing_else_changes() -> None:
    moved = rehomed(visit("old"), "new")
    assert isinstance(moved, VisitBooked)
    assert moved.client_id == "new" and moved.model_dump(exclude={"client_id"}) == visit(
        "old"
    ).model_dump(exclude={"client_id"})
    same = visit("new")
    assert rehomed(same, "new") is same


def test_an_intake_names_its_client_inside_the_client_record() -> None:
    intake = IntakeSubmitted(
        intake_id="i1",
        client=ClientRecord(client_id="old", name="Sam"),
        location_id="beaverton",
        complaints=[Complaint(region="neck", intensity=5, onset=date(2026, 6, 1))],
        health=Health(),
        screening=Screening(outcome="clear"),
        preferences=Preferences(),
        submitted_at=AT,
    )
    assert client_of(intake) == "old"
    moved = rehomed(intake, "new")
    assert isinstance(moved, IntakeSubmitted)
    assert moved.client.client_id == "new" and moved.client.name == "Sam"


def test_a_merge_of_a_survivor_points_its_earlier_aliases_at_the_new_survivor() -> None:
    # a was merged into b before; now b is merged into c: both must resolve to c at once
    assert alias_writes("b", "c", {"a"}) == {"a": "c", "b": "c"}
    assert alias_writes("b", "c", set()) == {"b": "c"}
    assert alias_writes("c", "c", {"a"}) == {"a": "c"}  # never an id to itself


def test_a_retired_record_names_the_survivor_and_where_it_came_from() -> None:
    record = {"status": "active", "event_type": "plan.created", "plan": {"client_id": "old"}}
    moved = merging.rehomed_record(record, "new", "old")
    assert moved["plan"]["client_id"] == "new" and moved["merged_from"] == "old"
    assert record["plan"]["client_id"] == "old"  # the input is left as it was
    # a record moved once keeps the id it was first recorded under
    assert merging.rehomed_record(moved, "newest", "new")["merged_from"] == "old"


def test_when_both_clients_have_an_active_plan_neither_is_dropped() -> None:
    plans, current = merging.active_plans({"kept": 100.0}, {"gone": 200.0})
    assert plans == {"kept": 100.0, "gone": 200.0} and current == "gone"
    plans, current = merging.active_plans({"kept": 300.0}, {"gone": 200.0})
    assert current == "kept"
    assert merging.active_plans({}, {}) == ({}, None)


def record(status: str, plan_id: str, body: str = "plan") -> dict[str, Any]:
    return {"status": status, body: {"plan_id": plan_id}}


def test_a_completion_does_not_hide_a_plan_that_goes_on() -> None:
    records = [record("active", "a"), record("active", "b"), record("completed", "b", "completion")]
    assert views.current_plan_id(records, active="a") == "a"
    assert views.current_plan_id(records, active=None) == "b"  # the plan just completed
    # a later plan or decline is the current record, whatever is active
    assert views.current_plan_id([*records, record("active", "c")], active="a") == "c"


def contact(client_id: str, **fields: Any) -> Contact:
    return Contact(client_id=client_id, location_id="beaverton", **fields)


def test_the_survivors_contact_and_consent_win() -> None:
    kept = contact("new", email="new@example.com", consent=Consent(email=True))
    gone = contact("old", email="old@example.com", consent=Consent(email=True, sms=True))
    assert merged_contact(kept, gone, client_id="new") == kept
    # the retired client's contact is used only when the survivor has none
    taken = merged_contact(None, gone, client_id="new")
    assert taken is not None and taken.client_id == "new" and taken.email == "old@example.com"
    assert merged_contact(None, None, client_id="new") is None


def test_a_stop_texted_from_the_kept_phone_still_stands() -> None:
    kept = contact("new", phone="+15035550123", consent=Consent(sms=True))
    stopped = contact("old", phone="+15035550123", consent=Consent(sms=True), sms_stopped=True)
    elsewhere = stopped.model_copy(update={"phone": "+15035550999"})
    assert merged_contact(kept, stopped, client_id="new").sms_stopped is True  # type: ignore[union-attr]
    assert merged_contact(kept, elsewhere, client_id="new").sms_stopped is False  # type: ignore[union-attr]


def key(*locations: str) -> Principal:
    return Principal(role="frontdesk", locations=locations, key_id="k")


def test_each_record_is_judged_by_its_own_location() -> None:
    records = [("a", "beaverton"), ("b", "brooklyn"), ("c", "beaverton")]
    assert in_scope(key("beaverton"), records, lambda r: r[1]) == [records[0], records[2]]
    assert in_scope(key("*"), records, lambda r: r[1]) == records
    with pytest.raises(HTTPException) as refused:
        in_scope(key("portland"), records, lambda r: r[1])
    assert refused.value.status_code == 404
