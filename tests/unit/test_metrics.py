"""What a published event adds to the metrics: per topic and type, and for bookings
and messages per location, kind, channel and status - never per client."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from shared import metrics
from shared.envelope import Envelope
from shared.lag import lag_of

AT = datetime(2027, 3, 8, 16, tzinfo=UTC)


def envelope(kind: str, data: dict[str, object], location: str | None = "m-loc") -> Envelope:
    return Envelope(
        id="e-1",
        source="/clinicflow/test",
        type=kind,
        subject="c-secret-client",
        time=AT,
        dataschema=f"urn:clinicflow:schema:{kind}:v1",
        chainid="chain",
        locationid=location,
        correlationid="i-1",
        data=data,
    )


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_bookings_are_counted_per_location_and_outcome() -> None:
    before = value(
        "clinicflow_bookings_total", service="m-test", location="m-loc", outcome="no_show"
    )
    metrics.published("m-test", "clinic.visits", envelope("visit.no_show", {}))
    after = value(
        "clinicflow_bookings_total", service="m-test", location="m-loc", outcome="no_show"
    )
    assert after == before + 1
    produced = value(
        "clinicflow_events_produced_total",
        service="m-test",
        topic="clinic.visits",
        type="visit.no_show",
    )
    assert produced >= 1


def test_notifications_are_counted_by_kind_channel_and_status() -> None:
    labels = {
        "service": "m-test",
        "location": "unknown",
        "kind": "checkin",
        "channel": "sms",
        "status": "suppressed",
    }
    before = value("clinicflow_notifications_total", **labels)
    data = {"client_id": "c-secret-client", "kind": "checkin", "channel": "sms"}
    metrics.published(
        "m-test", "clinic.notifications", envelope("notification.suppressed", data, None)
    )
    assert value("clinicflow_notifications_total", **labels) == before + 1


def test_no_label_carries_a_client() -> None:
    metrics.published("m-test", "clinic.visits", envelope("visit.booked", {"client_id": "c-x"}))
    for family in REGISTRY.collect():
        if family.name.startswith("clinicflow_"):
            for sample in family.samples:
                assert "c-secret-client" not in sample.labels.values()
                assert "c-x" not in sample.labels.values()


def test_lag_is_the_end_offset_less_the_next_offset_to_finish() -> None:
    ends = {("clinic.visits", 0): 120, ("clinic.visits", 1): 40, ("clinic.plans", 2): 7}
    done = {("clinic.visits", 0): 100, ("clinic.visits", 1): 40, ("clinic.plans", 2): 9}
    assert lag_of(ends, done) == {
        ("clinic.visits", 0): 20,
        ("clinic.visits", 1): 0,
        ("clinic.plans", 2): 0,  # never below zero (the end was read before the last record)
    }
    assert lag_of({("clinic.intake", 0): 5}, {}) == {("clinic.intake", 0): 0}
