"""What the chaos bench checks, from the public topics and the SMTP sink (pure: the
events, the mails, the clock and the cut-off are arguments).

- *Intakes*: every intake answered 202 has its ``intake.submitted`` and a
  ``plan.created`` or ``plan.declined``, once (one event id, one plan); every
  sequence of a created plan is booked or waitlisted.
- *Bookings*: one visit per (plan, sequence), one booking event id per visit (a
  redelivered event repeats its id); no two visits of one therapist, or of one room
  of a location, overlap.
- *Messages*: no e-mail arrives twice; every ``notification.sent`` on the e-mail
  channel arrived; every mail that arrived is ``notification.sent``, or
  ``notification.failed`` with ``outcome_unknown`` (services/notifier/attempts.py: a
  send its sender was killed in is reported, never repeated); every notification
  scheduled before the cut-off has exactly one terminal event.
- *Lag*: from a message's due time to its arrival at the sink, in simulated time.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench._load import percentile
from shared.clock import SimulatedClock

TERMINAL = frozenset(
    {
        "notification.sent",
        "notification.failed",
        "notification.suppressed",
        "notification.cancelled",
    }
)
OUTCOME_UNKNOWN = "outcome_unknown"
EXAMPLES = 5  # ids kept per problem, to look up in the logs

Event = Mapping[str, Any]


@dataclass(frozen=True)
class Mail:
    at: float  # real epoch seconds the sink accepted it
    message_id: str


@dataclass
class Notification:
    kind: str = ""
    channel: str = ""
    visit_id: str | None = None
    due_at: datetime | None = None  # the latest scheduled due time
    terminals: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> kind

    def outcome(self) -> tuple[str, str | None] | None:
        return next(iter(self.terminals.values()), None)


@dataclass
class Findings:
    intakes_accepted: int = 0
    intakes_lost: int = 0
    duplicate_intakes: int = 0  # a second submission event or plan for one intake
    plans_created: int = 0
    plans_declined: int = 0
    plans_incomplete: int = 0
    visits: int = 0
    waitlisted: int = 0
    duplicate_bookings: int = 0
    overlaps: int = 0
    scheduled: int = 0
    due_before_cutoff: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    cancelled: int = 0
    missing_terminal: int = 0
    terminal_twice: int = 0
    outcome_unknown: int = 0
    mails: int = 0
    duplicate_messages: int = 0
    sent_not_received: int = 0
    received_unexplained: int = 0
    dead_letters: int = 0
    dead_letters_unexplained: int = 0
    lag_p50_min: float | None = None
    lag_p99_min: float | None = None
    reminders_after_start: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, problem: str, item: str) -> None:
        kept = self.examples.setdefault(problem, [])
        if len(kept) < EXAMPLES:
            kept.append(item)


def message_id(notification_id: str, domain: str) -> str:
    """The Message-ID the notifier gives the e-mail of ``notification_id``
    (services/notifier/channels.py ``EmailChannel.message_id``)."""
    token = re.sub(r"[^A-Za-z0-9._-]", "-", notification_id) or "unnamed"
    return f"<notification.{token}@{domain}>"


def simulated(clock: SimulatedClock, real: float) -> datetime:
    """The simulated time at the real epoch instant ``real``."""
    return clock.start + timedelta(seconds=(real - clock.anchor) * clock.speed)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _of_type(events: Iterable[Event], *types: str) -> list[Event]:
    return [e for e in events if e.get("type") in types]


def notifications(events: Iterable[Event]) -> dict[str, Notification]:
    """Each notification's facts and terminal events, by notification id."""
    found: defaultdict[str, Notification] = defaultdict(Notification)
    for event in events:
        kind = str(event.get("type", ""))
        if not kind.startswith("notification."):
            continue
        data = event["data"]
        note = found[data["notification_id"]]
        note.kind, note.channel = data["kind"], data["channel"]
        note.visit_id = data.get("visit_id")
        if kind == "notification.scheduled":
            due = _at(data["due_at"])
            note.due_at = due if note.due_at is None else max(note.due_at, due)
        elif kind in TERMINAL:
            note.terminals[event["id"]] = (kind, data.get("reason"))
    return dict(found)


def unsettled_intakes(events: Sequence[Event], accepted: Iterable[str]) -> list[str]:
    """The accepted intakes without their submission, plan decision or every booking."""
    submitted = {e["data"]["intake_id"] for e in _of_type(events, "intake.submitted")}
    decided = {e["data"]["intake_id"] for e in _of_type(events, "plan.created", "plan.declined")}
    incomplete = {intake for intake, _ in _incomplete_plans(events)}
    return [i for i in accepted if i not in submitted or i not in decided or i in incomplete]


def _incomplete_plans(events: Sequence[Event]) -> list[tuple[str, str]]:
    """(intake id, plan id) of each created plan with a sequence neither booked nor
    waitlisted."""
    covered: defaultdict[str, set[int]] = defaultdict(set)
    for e in _of_type(events, "visit.booked", "booking.waitlisted"):
        covered[e["data"]["plan_id"]].add(int(e["data"]["sequence"]))
    incomplete = []
    for e in _of_type(events, "plan.created"):
        data = e["data"]
        if not set(range(1, int(data["sessions_total"]) + 1)) <= covered[data["plan_id"]]:
            incomplete.append((data["intake_id"], data["plan_id"]))
    return incomplete


def open_notifications(events: Sequence[Event], cutoff: datetime) -> list[str]:
    """What the notifier still owes before ``cutoff``: each visit booked with no
    notification decided for it yet, and each notification due before the cut-off
    without a terminal event."""
    notes = notifications(events)
    about = {n.visit_id for n in notes.values()}
    unseen = [
        f"visit {e['data']['visit_id']}"
        for e in _of_type(events, "visit.booked")
        if e["data"]["visit_id"] not in about
    ]
    due = [
        nid
        for nid, n in notes.items()
        if n.due_at is not None and n.due_at < cutoff and not n.terminals
    ]
    return unseen + due


def findings(
    events: Sequence[Event],
    mails: Sequence[Mail],
    *,
    accepted: Sequence[str],
    cutoff: datetime,
    clock: SimulatedClock,
    domain: str,
) -> Findings:
    found = Findings(intakes_accepted=len(accepted))
    _check_intakes(found, events, accepted)
    _check_bookings(found, events)
    notes = notifications(events)
    _check_terminals(found, notes, cutoff)
    _check_mails(found, events, notes, mails, clock, domain)
    _check_dead_letters(found, events)
    return found


def _check_intakes(found: Findings, events: Sequence[Event], accepted: Sequence[str]) -> None:
    submitted = {e["data"]["intake_id"] for e in _of_type(events, "intake.submitted")}
    decided = {e["data"]["intake_id"] for e in _of_type(events, "plan.created", "plan.declined")}
    for intake in accepted:
        if intake not in submitted or intake not in decided:
            found.intakes_lost += 1
            found.note("intake lost", intake)
    found.plans_created = len({e["data"]["plan_id"] for e in _of_type(events, "plan.created")})
    found.plans_declined = len({e["data"]["intake_id"] for e in _of_type(events, "plan.declined")})
    # a retried request, a redelivered intake: the same intake and plan again, same ids
    for kind, what in (("intake.submitted", "id"), ("plan.created", "plan_id")):
        seen: defaultdict[str, set[str]] = defaultdict(set)
        for e in _of_type(events, kind):
            seen[e["data"]["intake_id"]].add(e["id"] if what == "id" else e["data"][what])
        for intake, ids in seen.items():
            if len(ids) > 1:
                found.duplicate_intakes += len(ids) - 1
                found.note("intake twice", f"{intake}: {kind} {sorted(ids)}")
    for intake, plan in _incomplete_plans(events):
        found.plans_incomplete += 1
        found.note("plan not wholly booked", f"intake {intake} plan {plan}")


def _check_bookings(found: Findings, events: Sequence[Event]) -> None:
    by_sequence: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
    booking_ids: defaultdict[str, set[str]] = defaultdict(set)
    visits: dict[str, Mapping[str, Any]] = {}
    for e in _of_type(events, "visit.booked"):
        data = e["data"]
        by_sequence[(data["plan_id"], int(data["sequence"]))].add(data["visit_id"])
        booking_ids[data["visit_id"]].add(e["id"])
        visits[data["visit_id"]] = data
    found.visits = len(visits)
    found.waitlisted = len(
        {
            (e["data"]["plan_id"], e["data"]["sequence"])
            for e in _of_type(events, "booking.waitlisted")
        }
    )
    for (plan, sequence), ids in by_sequence.items():
        if len(ids) > 1:
            found.duplicate_bookings += len(ids) - 1
            found.note("duplicate booking", f"plan {plan} #{sequence}: {sorted(ids)}")
    for visit, ids in booking_ids.items():
        if len(ids) > 1:
            found.duplicate_bookings += len(ids) - 1
            found.note("duplicate booking", f"visit {visit}: events {sorted(ids)}")
    for resource in ("therapist_id", "room"):
        for first, second in _overlapping(visits.values(), resource):
            found.overlaps += 1
            found.note("overlap", f"{resource}: {first} and {second}")


def _overlapping(visits: Iterable[Mapping[str, Any]], resource: str) -> list[tuple[str, str]]:
    """Pairs of visits of one location's ``resource`` (a therapist, a room) whose times
    overlap, each next to the one before it in start order."""
    held: defaultdict[tuple[str, str], list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for v in visits:
        held[(v["location_id"], str(v[resource]))].append(
            (_at(v["start"]), _at(v["end"]), v["visit_id"])
        )
    pairs = []
    for spans in held.values():
        spans.sort()
        latest_end, latest = spans[0][1], spans[0][2]
        for start, end, visit in spans[1:]:
            if start < latest_end:
                pairs.append((latest, visit))
            if end > latest_end:
                latest_end, latest = end, visit
    return pairs


def _check_terminals(found: Findings, notes: Mapping[str, Notification], cutoff: datetime) -> None:
    counts: Counter[str] = Counter()
    for nid, note in notes.items():
        if len(note.terminals) > 1:
            found.terminal_twice += 1
            found.note("terminal twice", f"{nid}: {sorted(note.terminals.values())}")
        outcome = note.outcome()
        if outcome is not None:
            counts[outcome[0]] += 1
            if outcome == ("notification.failed", OUTCOME_UNKNOWN):
                found.outcome_unknown += 1
                found.note("outcome unknown", nid)
        if note.due_at is None:
            continue
        found.scheduled += 1
        if note.due_at < cutoff:
            found.due_before_cutoff += 1
            if not note.terminals:
                found.missing_terminal += 1
                found.note("no terminal event", f"{nid} due {note.due_at.isoformat()}")
    found.sent = counts["notification.sent"]
    found.failed = counts["notification.failed"]
    found.suppressed = counts["notification.suppressed"]
    found.cancelled = counts["notification.cancelled"]


def _check_mails(
    found: Findings,
    events: Sequence[Event],
    notes: Mapping[str, Notification],
    mails: Sequence[Mail],
    clock: SimulatedClock,
    domain: str,
) -> None:
    by_message = {message_id(nid, domain): nid for nid in notes}
    received: defaultdict[str, list[float]] = defaultdict(list)
    for mail in mails:
        received[mail.message_id].append(mail.at)
    found.mails = len(mails)
    for mid, times in received.items():
        nid = by_message.get(mid)
        if len(times) > 1:
            found.duplicate_messages += len(times) - 1
            found.note("duplicate message", f"{nid or mid} x{len(times)}")
        outcome = notes[nid].outcome() if nid is not None else None
        if outcome is None or not (
            outcome[0] == "notification.sent" or outcome[1] == OUTCOME_UNKNOWN
        ):
            found.received_unexplained += 1
            found.note("received, neither sent nor outcome_unknown", f"{nid or mid}: {outcome}")
    for nid, note in notes.items():
        outcome = note.outcome()
        sent = outcome is not None and outcome[0] == "notification.sent"
        if sent and note.channel == "email" and message_id(nid, domain) not in received:
            found.sent_not_received += 1
            found.note("sent, not received", nid)
    starts = {
        e["data"]["visit_id"]: _at(e["data"]["start"]) for e in _of_type(events, "visit.booked")
    }
    lags: list[float] = []
    for mid, times in received.items():
        nid = by_message.get(mid)
        if nid is None or notes[nid].due_at is None:
            continue
        note, arrived = notes[nid], simulated(clock, min(times))
        assert note.due_at is not None
        lags.append((arrived - note.due_at).total_seconds() / 60)
        start = starts.get(note.visit_id or "")
        if note.kind == "reminder" and start is not None and arrived > start:
            found.reminders_after_start += 1
            found.note("reminder after its visit started", nid)
    found.lag_p50_min, found.lag_p99_min = percentile(lags, 50), percentile(lags, 99)


def _check_dead_letters(found: Findings, events: Sequence[Event]) -> None:
    """Dead letters: those of an outcome_unknown are the policy's own report."""
    dead = {e["id"]: e for e in _of_type(events, "record.deadlettered")}
    found.dead_letters = len(dead)
    for e in dead.values():
        if not str(e["data"].get("error", "")).endswith(f": {OUTCOME_UNKNOWN}"):
            found.dead_letters_unexplained += 1
            found.note("dead letter", f"{e['data'].get('service')}: {e['data'].get('error')}")
