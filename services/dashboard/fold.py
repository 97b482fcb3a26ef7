"""A batch of observations added up in memory, in record order (pure).

The store writes a whole batch at once: the counters summed, the failed,
suppressed and late notifications and the dead letters in the order their records came,
and per partition the first offset the batch holds and the next one to read. No
rule needs what an earlier batch stored (every figure is a count or a list), so
nothing is read before the batch is folded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.dashboard.projection import DeadLetter, Observation


@dataclass(frozen=True)
class Positioned:
    """An observation and where its record sits."""

    topic: str
    partition: int
    offset: int
    observation: Observation


@dataclass
class Fold:
    """What a batch adds to the read model; fields as the store keeps them."""

    totals: Counter[str] = field(default_factory=Counter)  # "location|topic|type"
    flow: Counter[tuple[int, str]] = field(default_factory=Counter)  # minute, "location|topic"
    bookings: Counter[str] = field(default_factory=Counter)  # "location|outcome"
    notifications: Counter[str] = field(default_factory=Counter)  # "location|status|kind|channel"
    problems: list[tuple[str, str]] = field(default_factory=list)  # (location, JSON), oldest first
    dead_letters: list[DeadLetter] = field(default_factory=list)  # oldest record first
    first: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> first offset
    next: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> offset to read next


def partition_field(topic: str, partition: int) -> str:
    return f"{topic}|{partition}"


def fold(batch: Sequence[Positioned], *, keep_from_minute: int) -> Fold:
    """Add up ``batch``; per-minute flow only from ``keep_from_minute`` (epoch minutes) on."""
    out = Fold()
    for item in batch:
        seen = item.observation
        out.totals[f"{seen.location}|{item.topic}|{seen.type}"] += 1
        if seen.minute >= keep_from_minute:
            out.flow[(seen.minute, f"{seen.location}|{item.topic}")] += 1
        if seen.booking:
            out.bookings[f"{seen.location}|{seen.booking}"] += 1
        if fact := seen.notification:
            out.notifications[f"{seen.location}|{fact.status}|{fact.kind}|{fact.channel}"] += 1
            if fact.problem:
                problem = {**fact.__dict__, "at": fact.at.isoformat(), "location": seen.location}
                out.problems.append((seen.location, json.dumps(problem)))
        if dead := seen.dead_letter:
            out.dead_letters.append(dead)
        where = partition_field(item.topic, item.partition)
        out.first.setdefault(where, item.offset)
        out.next[where] = item.offset + 1
    return out
