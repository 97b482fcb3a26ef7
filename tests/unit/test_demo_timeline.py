"""The demo's timeline: under each message sent, what the client received."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.demo import _inbox, _print_timeline

ZONE = ZoneInfo("America/Los_Angeles")


def test_each_message_sent_is_shown_as_the_client_received_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    message = {
        "notification_id": "n-1",
        "subject": "Your visits are booked: Northwest",
        "body": "Hello,\n\nYour visits are booked.\n",
        "kind": "booking_confirmation",
    }
    outbox.write_text(json.dumps(message) + "\n" + json.dumps({**message, "body": "again"}) + "\n")
    events = [
        {
            "type": "notification.sent",
            "time": "2027-03-10T17:05:00Z",
            "data": {
                "notification_id": "n-1",
                "kind": "booking_confirmation",
                "channel": "console",
            },
        },
        {
            "type": "notification.sent",
            "time": "2027-03-10T17:06:00Z",
            "data": {"notification_id": "n-2", "kind": "reminder", "channel": "console"},
        },
    ]

    _print_timeline(events, ZONE, inbox=_inbox(outbox))
    shown = capsys.readouterr().out.splitlines()

    first = shown.index(next(line for line in shown if "booking_confirmation" in line))
    assert shown[first + 1 : first + 5] == [
        "      | Subject: Your visits are booked: Northwest",
        "      | Hello,",
        "      | ",
        "      | Your visits are booked.",
    ]
    assert "again" not in "\n".join(shown)  # the first copy is what the client got
    assert shown[-1].strip().startswith("Wed 2027-03-10 09:06")  # nothing kept for n-2


def test_without_an_outbox_the_timeline_is_the_events_alone(tmp_path: Path) -> None:
    assert _inbox(tmp_path / "missing.jsonl") == {}
