"""A batch added up in memory: counters summed, lists in record order, and per
partition where the batch begins and where reading goes on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.dashboard.fold import Positioned, fold
from services.dashboard.projection import observe

AT = datetime(2027, 3, 8, 17, 5, 30, tzinfo=UTC)
MINUTE = int(AT.timestamp() // 60)


def record(topic: str, partition: int, offset: int, type_: str, **data: object) -> Positioned:
    value = json.dumps(
        {
            "type": type_,
            "time": AT.isoformat(),
            "locationid": data.pop("at", "beaverton"),
            "data": data,
        }
    ).encode()
    return Positioned(topic, partition, offset, observe(topic, value, timestamp_ms=0))


def failed(offset: int, location: str, notification_id: str) -> Positioned:
    return record(
        "clinic.notifications",
        1,
        offset,
        "notification.failed",
        at=location,
        notification_id=notification_id,
        kind="reminder",
        channel="sms",
        reason="carrier refused",
    )


def test_counts_are_summed_per_field() -> None:
    batch = [
        record("clinic.visits", 0, 7, "visit.booked"),
        record("clinic.visits", 0, 8, "visit.booked"),
        record("clinic.visits", 2, 3, "visit.no_show", at="brooklyn"),
        failed(40, "beaverton", "n-1"),
    ]
    out = fold(batch, keep_from_minute=MINUTE)
    assert out.totals == {
        "beaverton|clinic.visits|visit.booked": 2,
        "brooklyn|clinic.visits|visit.no_show": 1,
        "beaverton|clinic.notifications|notification.failed": 1,
    }
    assert out.bookings == {"beaverton|booked": 2, "brooklyn|no_show": 1}
    assert out.notifications == {"beaverton|failed|reminder|sms": 1}
    assert out.flow[(MINUTE, "beaverton|clinic.visits")] == 2


def test_offsets_are_where_each_partition_begins_and_goes_on() -> None:
    batch = [
        record("clinic.visits", 0, 7, "visit.booked"),
        record("clinic.visits", 2, 3, "visit.booked"),
        record("clinic.visits", 0, 9, "visit.booked"),  # offsets may have gaps
    ]
    out = fold(batch, keep_from_minute=MINUTE)
    assert out.first == {"clinic.visits|0": 7, "clinic.visits|2": 3}
    assert out.next == {"clinic.visits|0": 10, "clinic.visits|2": 4}


def test_problems_keep_record_order_across_locations_and_flow_keeps_its_window() -> None:
    batch = [
        failed(1, "beaverton", "n-1"),
        failed(2, "brooklyn", "n-2"),
        failed(3, "beaverton", "n-3"),
    ]
    out = fold(batch, keep_from_minute=MINUTE + 1)
    assert [(where, json.loads(p)["notification_id"]) for where, p in out.problems] == [
        ("beaverton", "n-1"),
        ("brooklyn", "n-2"),
        ("beaverton", "n-3"),
    ]
    assert "client_id" not in json.loads(out.problems[0][1])
    assert not out.flow  # before the window's first minute
    assert out.totals["beaverton|clinic.notifications|notification.failed"] == 2
