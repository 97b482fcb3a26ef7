"""The dashboard's picture of a chain or one location at one moment (pure).

``overview`` takes what the read model and the last probe round hold and
returns the JSON the page draws: event flow per topic and minute, totals,
bookings, waitlist sizes, notification problems, dead letters, consumer lag and
service health. A location's picture keeps only that location's events; lag and
health belong to the services, which every location shares.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.dashboard.probes import Probed
from services.dashboard.projection import DeadLetter

DEAD_LETTERS_SHOWN = 50
PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class ReadModel:
    """The read model's contents, as loaded for one picture."""

    totals: Mapping[tuple[str, str, str], int]  # (location, topic, type) -> events
    flow: Mapping[int, Mapping[str, int]]  # minute -> "location|topic" -> events
    bookings: Mapping[str, int]  # "location|outcome"
    notifications: Mapping[str, int]  # "location|status|kind|channel"
    problems: Sequence[Mapping[str, Any]]
    dead_letters: Sequence[DeadLetter]
    replayed: Mapping[str, Mapping[str, Any]]  # by the failed record's position


def window(now: datetime, minutes: int) -> list[int]:
    """The epoch minutes shown, oldest first, ending with the current one."""
    current = int(now.timestamp() // 60)
    return list(range(current - minutes + 1, current + 1))


def overview(
    model: ReadModel,
    probed: Probed,
    *,
    now: datetime,
    minutes: Sequence[int],
    topics: Sequence[str],
    location: str | None,
) -> dict[str, Any]:
    def mine(loc: str) -> bool:
        return location is None or loc == location

    per_topic = {topic: [0] * len(minutes) for topic in topics}
    for i, minute in enumerate(minutes):
        for field, n in model.flow.get(minute, {}).items():
            loc, _, topic = field.partition("|")
            if mine(loc) and topic in per_topic:
                per_topic[topic][i] += n
    totals: Counter[tuple[str, str]] = Counter()
    for (loc, topic, kind), n in model.totals.items():
        if mine(loc):
            totals[(topic, kind)] += n
    bookings: dict[str, dict[str, int]] = defaultdict(dict)
    for field, n in model.bookings.items():
        loc, _, outcome = field.partition("|")
        if mine(loc):
            bookings[loc][outcome] = n
    by_status: Counter[str] = Counter()
    by_kind: Counter[tuple[str, str, str]] = Counter()
    for field, n in model.notifications.items():
        loc, status, kind, channel = field.split("|", 3)
        if mine(loc):
            by_status[status] += n
            by_kind[(kind, channel, status)] += n
    dead = [d for d in model.dead_letters if mine(d.location)]
    return {
        "now": now.astimezone(UTC).isoformat(),
        "flow": {
            "minutes": [_minute_iso(m) for m in minutes],
            "topics": per_topic,
            "window_total": {topic: sum(counts) for topic, counts in per_topic.items()},
        },
        "totals": [
            {"topic": topic, "type": kind, "count": n}
            for (topic, kind), n in sorted(totals.items())
        ],
        "bookings": dict(sorted(bookings.items())),
        "waitlist": {loc: size for loc, size in sorted(probed.waitlist.items()) if mine(loc)},
        "notifications": {
            "by_status": dict(sorted(by_status.items())),
            "by_kind": [
                {"kind": k, "channel": c, "status": s, "count": n}
                for (k, c, s), n in sorted(by_kind.items())
            ],
            "problems": [p for p in model.problems if mine(str(p.get("location")))][
                :PROBLEMS_SHOWN
            ],
        },
        "dead_letters": {
            "open": sum(1 for d in dead if d.position not in model.replayed),
            "replayed": sum(1 for d in dead if d.position in model.replayed),
            "recent": [
                summary(d, model.replayed.get(d.position)) for d in dead[:DEAD_LETTERS_SHOWN]
            ],
        },
        "lag": [lag.__dict__ for lag in sorted(probed.lag, key=_lag_order)],
        "lag_total": sum(lag.lag for lag in probed.lag),
        "services": [
            {**i.__dict__} for i in sorted(probed.instances, key=lambda i: (i.service, i.instance))
        ],
        "probed_at": probed.at.astimezone(UTC).isoformat() if probed.at else None,
    }


def summary(dead: DeadLetter, replayed: Mapping[str, Any] | None) -> dict[str, Any]:
    """A dead letter as listed: where it came from and why, not its payload."""
    return {
        "id": dead.id,
        "service": dead.service,
        "source_topic": dead.source_topic,
        "partition": dead.partition,
        "offset": dead.offset,
        "error": dead.error,
        "failed_at": dead.failed_at.isoformat(),
        "location": dead.location,
        "original_type": dead.original_type,
        "correlation_id": dead.correlation_id,
        "replayed": dict(replayed) if replayed else None,
    }


def _minute_iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, tz=UTC).isoformat()


def _lag_order(lag: Any) -> tuple[int, str, str, int]:
    return (-lag.lag, lag.service, lag.topic, lag.partition)
