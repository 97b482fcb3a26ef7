"""The dashboard's pure parts: what a record tells it, the picture it draws, and
what it reads from a service's metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from services.dashboard.fold import Positioned, fold
from services.dashboard.probes import Instance, Lag, Probed, read_metrics
from services.dashboard.projection import DeadLetter, observe
from services.dashboard.views import ReadModel, overview, window

AT = datetime(2027, 3, 8, 17, 5, 30, tzinfo=UTC)
TS = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)


def envelope(kind: str, data: dict[str, object], **extra: object) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "e-1",
            "type": kind,
            "time": AT.isoformat(),
            "locationid": "beaverton",
            "correlationid": "i-1",
            "data": data,
            **extra,
        }
    ).encode()


def test_a_booking_event_counts_for_its_location_at_its_own_time() -> None:
    seen = observe("clinic.visits", envelope("visit.no_show", {}), timestamp_ms=TS)
    assert (seen.type, seen.location, seen.booking) == ("visit.no_show", "beaverton", "no_show")
    assert seen.at == AT  # the event's time (the shared clock), not the broker's
    assert seen.minute == int(AT.timestamp() // 60)


def test_a_notification_keeps_kind_channel_and_reason_but_no_client() -> None:
    data = {"notification_id": "n-1", "client_id": "c-1", "kind": "reminder", "channel": "sms"}
    seen = observe(
        "clinic.notifications",
        envelope("notification.suppressed", {**data, "reason": "sms_stopped"}),
        timestamp_ms=TS,
    )
    assert seen.notification is not None
    assert (seen.notification.status, seen.notification.reason) == ("suppressed", "sms_stopped")
    assert "client_id" not in seen.notification.__dict__


def test_a_late_reminder_and_a_too_late_one_are_both_problems_to_look_at() -> None:
    data = {"notification_id": "n-1", "client_id": "c-1", "kind": "reminder", "channel": "email"}
    late = {
        **data,
        "due_at": AT.isoformat(),
        "planned_due_at": (AT - timedelta(hours=3)).isoformat(),
    }
    batch = [
        ("notification.scheduled", late),
        ("notification.suppressed", {**data, "notification_id": "n-2", "reason": "too_late"}),
        ("notification.scheduled", {**data, "notification_id": "n-3", "due_at": AT.isoformat()}),
    ]
    seen = [
        Positioned(
            "clinic.notifications",
            0,
            n,
            observe("clinic.notifications", envelope(k, d), timestamp_ms=TS),
        )
        for n, (k, d) in enumerate(batch)
    ]
    problems = [json.loads(p) for _, p in fold(seen, keep_from_minute=0).problems]
    assert [(p["notification_id"], p["status"], p["reason"]) for p in problems] == [
        ("n-1", "scheduled", None),
        ("n-2", "suppressed", "too_late"),
    ]
    assert problems[0]["planned_due_at"] == late["planned_due_at"]  # shown as late


def test_a_dead_letter_keeps_its_record_for_inspection() -> None:
    inner = envelope("intake.submitted", {"client": {"name": "x"}}).decode()
    data = {
        "source_topic": "clinic.intake",
        "partition": 3,
        "offset": 41,
        "key": "c-1",
        "error": "rejected intake.submitted: unknown location",
        "payload": inner,
        "payload_encoding": "utf-8",
        "service": "planner",
        "failed_at": AT.isoformat(),
    }
    seen = observe("clinic.deadletter", envelope("record.deadlettered", data), timestamp_ms=TS)
    dead = seen.dead_letter
    assert dead is not None
    assert (dead.source_topic, dead.partition, dead.offset) == ("clinic.intake", 3, 41)
    assert dead.original_type == "intake.submitted"
    assert DeadLetter.from_json(json.loads(json.dumps(dead.to_json()))) == dead


def test_records_nobody_can_read_are_counted_not_dropped() -> None:
    for value in (None, b"", b"\xff\xfe", b"[1, 2]", b'{"no": "type"}'):
        seen = observe("clinic.intake", value, timestamp_ms=TS)
        assert (seen.type, seen.location) == ("undecodable", "unknown")
        assert seen.at == datetime(2030, 1, 1, tzinfo=UTC)
    odd = observe("clinic.visits", envelope("visit.booked", {}, time="yesterday"), timestamp_ms=TS)
    assert odd.at == datetime(2030, 1, 1, tzinfo=UTC)


def dead(location: str, n: int) -> DeadLetter:
    return DeadLetter(
        id=f"d-{location}-{n}",
        service="notifier",
        source_topic="clinic.visits",
        partition=0,
        offset=n,
        key="c-1",
        error="boom",
        payload="{}",
        payload_encoding="utf-8",
        failed_at=AT,
        location=location,
        correlation_id=None,
        original_type="visit.booked",
    )


def test_the_picture_of_a_location_keeps_its_own_events_only() -> None:
    minutes = window(AT, 5)
    assert minutes[-1] == int(AT.timestamp() // 60) and len(minutes) == 5
    model = ReadModel(
        totals={
            ("beaverton", "clinic.visits", "visit.booked"): 3,
            ("brooklyn", "clinic.visits", "visit.booked"): 5,
        },
        flow={
            minutes[-1]: {"beaverton|clinic.visits": 2, "brooklyn|clinic.visits": 4},
            minutes[0]: {"beaverton|clinic.visits": 1},
            minutes[0] - 1: {"beaverton|clinic.visits": 100},  # outside the window
        },
        bookings={"beaverton|booked": 3, "brooklyn|booked": 5},
        notifications={
            "beaverton|failed|reminder|sms": 1,
            "brooklyn|suppressed|reminder|email": 2,
        },
        problems=[{"location": "brooklyn", "status": "suppressed"}],
        dead_letters=[dead("beaverton", 1), dead("brooklyn", 2), dead("beaverton", 3)],
        replayed={"clinic.visits/0/3": {"offset": 9}},
    )
    probed = Probed(
        at=AT,
        instances=[Instance("planner", "10.0.0.2:8002", True, {"redis": True})],
        lag=[Lag("planner", "clinic.intake", 1, 7, "10.0.0.2:8002")],
        waitlist={"beaverton": 2, "brooklyn": 1},
    )
    topics = ["clinic.visits", "clinic.plans"]
    mine = overview(model, probed, now=AT, minutes=minutes, topics=topics, location="beaverton")
    assert mine["flow"]["topics"]["clinic.visits"] == [1, 0, 0, 0, 2]
    assert mine["flow"]["window_total"] == {"clinic.visits": 3, "clinic.plans": 0}
    assert mine["totals"] == [{"topic": "clinic.visits", "type": "visit.booked", "count": 3}]
    assert mine["bookings"] == {"beaverton": {"booked": 3}}
    assert mine["waitlist"] == {"beaverton": 2}
    assert mine["notifications"]["by_status"] == {"failed": 1}
    assert mine["notifications"]["problems"] == []
    assert (mine["dead_letters"]["open"], mine["dead_letters"]["replayed"]) == (1, 1)
    assert [d["id"] for d in mine["dead_letters"]["recent"]] == ["d-beaverton-1", "d-beaverton-3"]
    assert mine["lag_total"] == 7  # the services are every location's
    chain = overview(model, probed, now=AT, minutes=minutes, topics=topics, location=None)
    assert chain["flow"]["window_total"]["clinic.visits"] == 7
    assert chain["dead_letters"]["open"] == 2
    assert chain["waitlist"] == {"beaverton": 2, "brooklyn": 1}
    assert datetime.fromisoformat(chain["flow"]["minutes"][0]) == AT.replace(second=0) - timedelta(
        minutes=4
    )


def test_lag_and_waitlists_are_read_from_a_services_metrics() -> None:
    registry = CollectorRegistry()
    lag = Gauge("clinicflow_consumer_lag", "", ["service", "topic", "partition"], registry=registry)
    lag.labels("notifier", "clinic.visits", "4").set(12)
    size = Gauge("clinicflow_waitlist_size", "", ["location"], registry=registry)
    size.labels("brooklyn").set(3)
    Gauge("clinicflow_other", "", registry=registry).set(1)
    lags, waitlist = read_metrics(generate_latest(registry).decode(), "10.0.0.9:8004")
    assert lags == [Lag("notifier", "clinic.visits", 4, 12, "10.0.0.9:8004")]
    assert waitlist == {"brooklyn": 3}
