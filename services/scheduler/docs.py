"""Examples for the scheduler's OpenAPI document: answers the service gave in a run of the
demo chain, shortened; tests/unit/test_openapi_documents.py validates each against its
schema."""

from __future__ import annotations

from typing import Any, Final

CLIENT_VISITS_EXAMPLE: Final[dict[str, Any]] = {
    "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
    "client_name": "Jordan Rivera",
    "visits": [
        {
            "visit_id": "48bbf8b5-c0cd-5671-a0df-df0aefbc18c2",
            "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
            "plan_version": 1,
            "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
            "location_id": "beaverton",
            "therapist_id": "t-ana",
            "room": 1,
            "start": "2027-03-10T17:00:00Z",
            "end": "2027-03-10T18:00:00Z",
            "local_start": "2027-03-10T09:00:00-08:00",
            "timezone": "America/Los_Angeles",
            "sequence": 1,
            "sessions_total": 9,
            "phase": "intensive",
            "makeup_for": None,
            "status": "completed",
            "client_name": "Jordan Rivera",
            "therapist_name": "Ana Ruiz",
            "location_name": "Beaverton",
            "room_name": "Room 1",
            "sequence_label": "1 of 9",
            "cadence_note": None,
        },
        {
            "visit_id": "1abf392a-f6fd-59d8-aad0-c697544fe704",
            "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
            "plan_version": 1,
            "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
            "location_id": "beaverton",
            "therapist_id": "t-ana",
            "room": 1,
            "start": "2027-03-15T16:00:00Z",
            "end": "2027-03-15T17:00:00Z",
            "local_start": "2027-03-15T09:00:00-07:00",
            "timezone": "America/Los_Angeles",
            "sequence": 2,
            "sessions_total": 9,
            "phase": "intensive",
            "makeup_for": None,
            "status": "booked",
            "client_name": "Jordan Rivera",
            "therapist_name": "Ana Ruiz",
            "location_name": "Beaverton",
            "room_name": "Room 1",
            "sequence_label": "2 of 9",
            "cadence_note": "Session 2 is on Mon 15 Mar, 2 days after the cadence's Sat "
            "13 Mar (every 3 days): not among the client's days (Sat 13 "
            "Mar); Beaverton is closed (Sun 14 Mar).",
        },
        {
            "visit_id": "c8319160-b0da-52b4-b0ce-5ca7695c41e2",
            "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
            "plan_version": 1,
            "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
            "location_id": "beaverton",
            "therapist_id": "t-ana",
            "room": 1,
            "start": "2027-03-22T16:30:00Z",
            "end": "2027-03-22T17:30:00Z",
            "local_start": "2027-03-22T09:30:00-07:00",
            "timezone": "America/Los_Angeles",
            "sequence": 3,
            "sessions_total": 9,
            "phase": "intensive",
            "makeup_for": None,
            "status": "booked",
            "client_name": "Jordan Rivera",
            "therapist_name": "Ana Ruiz",
            "location_name": "Beaverton",
            "room_name": "Room 1",
            "sequence_label": "3 of 9",
            "cadence_note": "Session 3 is on Mon 22 Mar, 4 days after the cadence's Thu "
            "18 Mar (every 3 days): not among the client's days (Thu 18 "
            "Mar, Fri 19 Mar, Sat 20 Mar); Beaverton is closed (Sun 21 "
            "Mar).",
        },
        {
            "visit_id": "14d9c08a-4cb8-5d95-9c18-e0192e20ee84",
            "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
            "plan_version": 1,
            "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
            "location_id": "beaverton",
            "therapist_id": "t-ana",
            "room": 1,
            "start": "2027-03-29T16:00:00Z",
            "end": "2027-03-29T17:00:00Z",
            "local_start": "2027-03-29T09:00:00-07:00",
            "timezone": "America/Los_Angeles",
            "sequence": 4,
            "sessions_total": 9,
            "phase": "intensive",
            "makeup_for": None,
            "status": "cancelled",
            "client_name": "Jordan Rivera",
            "therapist_name": "Ana Ruiz",
            "location_name": "Beaverton",
            "room_name": "Room 1",
            "sequence_label": "4 of 9",
            "cadence_note": "Session 4 is on Mon 29 Mar, 4 days after the cadence's Thu "
            "25 Mar (every 3 days): not among the client's days (Thu 25 "
            "Mar, Fri 26 Mar, Sat 27 Mar); Beaverton is closed (Sun 28 "
            "Mar).",
        },
    ],
}
CALENDAR_DAY_EXAMPLE: Final[dict[str, Any]] = {
    "location_id": "beaverton",
    "location_name": "Beaverton",
    "day": "2027-03-10",
    "timezone": "America/Los_Angeles",
    "utc_offsets": ["-08:00"],
    "closed": False,
    "opening": [{"start": "2027-03-10T09:00:00-08:00", "end": "2027-03-10T18:00:00-08:00"}],
    "therapists": [
        {
            "therapist_id": "t-ana",
            "name": "Ana Ruiz",
            "working": [{"start": "2027-03-10T09:00:00-08:00", "end": "2027-03-10T18:00:00-08:00"}],
            "visits": [
                {
                    "visit_id": "48bbf8b5-c0cd-5671-a0df-df0aefbc18c2",
                    "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
                    "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
                    "therapist_id": "t-ana",
                    "room": 1,
                    "start": "2027-03-10T09:00:00-08:00",
                    "end": "2027-03-10T10:00:00-08:00",
                    "sequence": 1,
                    "sessions_total": 9,
                    "offered": False,
                    "status": "completed",
                    "client_name": "Jordan Rivera",
                    "therapist_name": "Ana Ruiz",
                    "location_id": "beaverton",
                    "location_name": "Beaverton",
                    "room_name": "Room 1",
                    "sequence_label": "1 of 9",
                    "cadence_note": None,
                }
            ],
        },
        {
            "therapist_id": "t-ben",
            "name": "Ben Okafor",
            "working": [{"start": "2027-03-10T09:00:00-08:00", "end": "2027-03-10T18:00:00-08:00"}],
            "visits": [],
        },
        {"therapist_id": "t-dev", "name": "Dev Patel", "working": [], "visits": []},
    ],
    "rooms": [
        {
            "room": 1,
            "room_name": "Room 1",
            "visits": [
                {
                    "visit_id": "48bbf8b5-c0cd-5671-a0df-df0aefbc18c2",
                    "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
                    "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
                    "therapist_id": "t-ana",
                    "room": 1,
                    "start": "2027-03-10T09:00:00-08:00",
                    "end": "2027-03-10T10:00:00-08:00",
                    "sequence": 1,
                    "sessions_total": 9,
                    "offered": False,
                    "status": "completed",
                    "client_name": "Jordan Rivera",
                    "therapist_name": "Ana Ruiz",
                    "location_id": "beaverton",
                    "location_name": "Beaverton",
                    "room_name": "Room 1",
                    "sequence_label": "1 of 9",
                    "cadence_note": None,
                }
            ],
        },
        {"room": 2, "room_name": "Room 2", "visits": []},
        {"room": 3, "room_name": "Room 3", "visits": []},
    ],
    "cancelled": [],
}
RESCHEDULED_EXAMPLE: Final[dict[str, Any]] = {
    "event_type": "visit.rescheduled",
    "data": {
        "visit_id": "c8319160-b0da-52b4-b0ce-5ca7695c41e2",
        "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
        "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
        "location_id": "beaverton",
        "therapist_id": "t-ana",
        "room": 1,
        "previous_start": "2027-03-22T16:00:00Z",
        "start": "2027-03-22T16:30:00Z",
        "end": "2027-03-22T17:30:00Z",
        "timezone": "America/Los_Angeles",
    },
}
CANCELLED_EXAMPLE: Final[dict[str, Any]] = {
    "event_type": "visit.cancelled",
    "data": {
        "visit_id": "14d9c08a-4cb8-5d95-9c18-e0192e20ee84",
        "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
        "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
        "location_id": "beaverton",
        "by": "client",
        "late": False,
        "reason": "travelling for work",
        "cancelled_at": "2027-03-08T20:38:48.162575Z",
        "cause": "client",
    },
}
COMPLETED_EXAMPLE: Final[dict[str, Any]] = {
    "event_type": "visit.completed",
    "data": {
        "visit_id": "48bbf8b5-c0cd-5671-a0df-df0aefbc18c2",
        "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
        "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
        "location_id": "beaverton",
        "therapist_id": "t-ana",
        "pain_before": 7,
        "pain_after": 4,
        "pressure_tolerance": 5,
        "techniques": ["ischemic_compression", "stretching"],
        "trigger_points": [
            {"muscle": "levator scapulae", "side": "right", "type": "active", "released": True}
        ],
        "notes": "levator scapulae tight on the right; released well",
        "completed_at": "2027-03-10T17:38:18.053312Z",
    },
}

# the requests that gave the answers above
RESCHEDULE_REQUEST: Final[dict[str, Any]] = {"start": "2027-03-22T16:30:00Z"}
CANCEL_REQUEST: Final[dict[str, Any]] = {"by": "client", "reason": "travelling for work"}
COMPLETE_REQUEST: Final[dict[str, Any]] = {
    key: COMPLETED_EXAMPLE["data"][key]
    for key in ("pain_before", "pain_after", "pressure_tolerance", "techniques", "notes")
} | {"trigger_points": COMPLETED_EXAMPLE["data"]["trigger_points"]}
