"""The events of ``clinic.directory``: their wire form, their published schemas, the
errors bad input gets, and the topic they go on (keyed by chain, not client)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from services.dashboard.fold import Positioned, fold
from services.dashboard.projection import observe
from shared.codec import DecodeError, decode_data, decode_envelope, encode, wrap
from shared.envelope import Trace
from shared.events import (
    EVENT_MODELS,
    DirectoryClosureAdded,
    DirectoryClosureRemoved,
    DirectoryExceptionAdded,
    DirectoryExceptionRemoved,
    DirectoryHoursSet,
    DirectoryPolicySet,
    EventData,
)
from shared.topics import DIRECTORY, PUBLIC_TOPICS, topic_for

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NOW = datetime(2027, 3, 8, 16, 0, tzinfo=UTC)
CHAIN = "northwest-nmt"
CHANGE: dict[str, Any] = {"changed_by": "ops-portland", "changed_at": NOW, "version": 7}

EVENTS: list[EventData] = [
    DirectoryHoursSet(
        therapist_id="t-ana",
        location_id="beaverton",
        hours={"mon": ["09:00-13:00", "14:00-18:00"], "sat": ["10:00-14:00"]},
        **CHANGE,
    ),
    DirectoryHoursSet(therapist_id="t-ana", location_id="pearl", hours={}, **CHANGE),
    DirectoryExceptionAdded(
        exception_id="x-1",
        therapist_id="t-ana",
        kind="time_off",
        start_date=date(2027, 3, 15),
        end_date=date(2027, 3, 19),
        note="spring break",
        replanned=4,
        **CHANGE,
    ),
    DirectoryExceptionAdded(
        exception_id="x-2",
        therapist_id="t-ana",
        kind="extra_shift",
        start_date=date(2027, 3, 20),
        end_date=date(2027, 3, 20),
        location_id="beaverton",
        ranges=["09:00-12:00"],
        **CHANGE,
    ),
    DirectoryExceptionRemoved(exception_id="x-1", therapist_id="t-ana", **CHANGE),
    DirectoryClosureAdded(
        closure_id="cl-1",
        location_id="beaverton",
        start_date=date(2027, 12, 24),
        end_date=date(2027, 12, 26),
        hours=["10:00-14:00"],
        note="holiday hours",
        **CHANGE,
    ),
    DirectoryClosureRemoved(closure_id="cl-1", location_id="beaverton", **CHANGE),
    DirectoryPolicySet(turnover=timedelta(minutes=15), max_visits_per_day=8, **CHANGE),
    DirectoryPolicySet(
        location_id="pearl",
        turnover=timedelta(0),
        changed_by="chain configuration",
        changed_at=NOW,
        version=1,
    ),
]
DIRECTORY_TYPES = (
    "directory.hours_set",
    "directory.exception_added",
    "directory.exception_removed",
    "directory.closure_added",
    "directory.closure_removed",
    "directory.policy_set",
)


def wire(data: EventData) -> bytes:
    envelope = wrap(
        data,
        event_id="e-1",
        service="scheduler",
        subject=CHAIN,
        trace=Trace(chainid=CHAIN, correlationid="r-1", locationid="beaverton"),
        time=NOW,
    )
    return encode(envelope)


def published_schema(data: EventData) -> dict[str, Any]:
    path = SCHEMAS / f"{data.event_type}.v{data.schema_version}.schema.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def test_the_six_are_registered_and_the_examples_cover_them() -> None:
    assert {t for t in EVENT_MODELS if t.startswith("directory.")} == set(DIRECTORY_TYPES)
    assert {e.event_type for e in EVENTS} == set(DIRECTORY_TYPES)
    assert DIRECTORY.event_types == DIRECTORY_TYPES


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.event_type}")
def test_round_trip_and_published_schema(event: EventData) -> None:
    raw = wire(event)
    back = decode_envelope(raw)
    assert back.type == event.event_type
    assert back.dataschema == f"urn:clinicflow:schema:{event.event_type}:v1"
    assert decode_data(back) == event
    schema = published_schema(event)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(json.loads(raw)["data"])


def test_the_published_schema_refuses_what_the_model_refuses() -> None:
    policy = DirectoryPolicySet(turnover=timedelta(minutes=10), **CHANGE)
    validator = jsonschema.Draft202012Validator(published_schema(policy))
    data = policy.to_data()
    assert data["turnover"] == "PT10M"
    assert "max_visits_per_day" not in data  # no cap: absent on the wire
    for broken in (
        {**data, "max_visits_per_day": 21},
        {**data, "version": 0},
        {k: v for k, v in data.items() if k != "changed_by"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)
    hours = EVENTS[0]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(published_schema(hours)).validate(
            {**hours.to_data(), "hours": {"monday": ["09:00-13:00"]}}
        )


def errors_of(model: type[EventData], **fields: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**CHANGE, **fields})
    return [(err["loc"], err["msg"]) for err in caught.value.errors()]


EXCEPTION = {
    "exception_id": "x-1",
    "therapist_id": "t-ana",
    "kind": "sick",
    "start_date": "2027-03-15",
    "end_date": "2027-03-16",
}
CLOSURE = {
    "closure_id": "cl-1",
    "location_id": "beaverton",
    "start_date": "2027-12-24",
    "end_date": "2027-12-24",
}


@pytest.mark.parametrize(
    ("model", "fields"), [(DirectoryExceptionAdded, EXCEPTION), (DirectoryClosureAdded, CLOSURE)]
)
def test_an_end_before_the_start_names_end_date(
    model: type[EventData], fields: dict[str, Any]
) -> None:
    [(loc, msg)] = errors_of(
        model, **{**fields, "start_date": "2027-03-20", "end_date": "2027-03-19"}
    )
    assert loc == ("end_date",)
    assert msg == "end_date 2027-03-19 is before start_date 2027-03-20"


def test_a_one_day_range_is_fine() -> None:
    one_day = {**EXCEPTION, "end_date": EXCEPTION["start_date"]}
    assert DirectoryExceptionAdded.model_validate({**CHANGE, **one_day}).end_date == date(
        2027, 3, 15
    )


def test_an_opening_range_that_ends_before_it_starts_names_its_place() -> None:
    [(loc, msg)] = errors_of(
        DirectoryHoursSet,
        therapist_id="t-ana",
        location_id="beaverton",
        hours={"mon": ["09:00-12:00", "18:00-09:00"]},
    )
    assert loc == ("hours", "mon", 1)
    assert "'18:00-09:00': opening ranges must end after they start" in msg
    [(loc, msg)] = errors_of(DirectoryClosureAdded, **CLOSURE, hours=["18:00-09:00"])
    assert loc == ("hours", 0)
    [(loc, msg)] = errors_of(DirectoryExceptionAdded, **EXCEPTION, ranges=["noon-ish"])
    assert loc == ("ranges", 0)
    assert "is not a range like '09:00-18:00'" in msg


def test_an_unknown_weekday_names_the_key() -> None:
    [(loc, msg)] = errors_of(
        DirectoryHoursSet,
        therapist_id="t-ana",
        location_id="beaverton",
        hours={"monday": ["09:00-12:00"]},
    )
    assert loc == ("hours", "monday", "[key]")
    assert "'mon'" in msg and "'sun'" in msg


def test_an_unknown_kind_names_kind() -> None:
    [(loc, msg)] = errors_of(DirectoryExceptionAdded, **{**EXCEPTION, "kind": "vacation"})
    assert loc == ("kind",)
    assert "'time_off', 'sick', 'extra_shift' or 'changed_hours'" in msg


@pytest.mark.parametrize("kind", ["extra_shift", "changed_hours"])
def test_a_shift_or_changed_hours_needs_a_location(kind: str) -> None:
    [(loc, msg)] = errors_of(DirectoryExceptionAdded, **{**EXCEPTION, "kind": kind})
    assert loc == ("location_id",)
    assert kind in msg


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"turnover": "PT2H1M"}, ("turnover",)),
        ({"turnover": "-PT1M"}, ("turnover",)),
        ({"turnover": "PT0S", "max_visits_per_day": 0}, ("max_visits_per_day",)),
        ({"turnover": "PT0S", "max_visits_per_day": 21}, ("max_visits_per_day",)),
        ({"turnover": "PT0S", "version": 0}, ("version",)),
        ({"turnover": "PT0S", "replanned": -1}, ("replanned",)),
        ({"turnover": "PT0S", "changed_at": "2027-03-08T16:00:00"}, ("changed_at",)),
    ],
)
def test_policy_bounds_name_the_field(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert [found for found, _ in errors_of(DirectoryPolicySet, **fields)] == [loc]


def test_a_bad_record_is_a_decode_error_with_the_field_path() -> None:
    record = json.loads(wire(EVENTS[2]))
    record["data"]["end_date"] = "2027-03-01"
    with pytest.raises(DecodeError, match=r"invalid directory.exception_added data: end_date: "):
        decode_data(decode_envelope(json.dumps(record).encode()))


def test_the_topic_is_clinic_directory_keyed_by_chain() -> None:
    spec = topic_for("directory.exception_added")
    assert spec.name == "clinic.directory"
    assert spec.key == "chain_id"
    assert spec is DIRECTORY
    assert all(topic_for(t) is DIRECTORY for t in DIRECTORY_TYPES)
    assert (spec.partitions, spec.retention_days, spec.cleanup_policy) == (1, 3650, "delete")
    names = [s.name for s in PUBLIC_TOPICS]
    assert names.index("clinic.directory") == names.index("clinic.notifications") + 1
    assert names[-1] == "clinic.deadletter"


def test_the_dashboard_counts_directory_events_and_nothing_else() -> None:
    """Directory events carry no client: the dashboard counts them by type, and they
    are no booking, notification or dead letter."""
    batch = [
        Positioned(
            topic="clinic.directory",
            partition=0,
            offset=n,
            observation=observe("clinic.directory", wire(event), timestamp_ms=0),
        )
        for n, event in enumerate(EVENTS)
    ]
    out = fold(batch, keep_from_minute=0)
    assert out.totals["beaverton|clinic.directory|directory.policy_set"] == 2
    assert sum(out.totals.values()) == len(EVENTS)
    assert not out.bookings and not out.notifications and not out.dead_letters
    assert out.next == {"clinic.directory|0": len(EVENTS)}
