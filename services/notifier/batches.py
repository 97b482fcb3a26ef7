"""Booking confirmations and change notices, one message per plan change (pure).

A visit event of a plan (booked, moved, cancelled by the clinic or the planner,
waitlisted) or a plan outcome the client must know (``plan_outcome``) is a
``member`` of the plan's open batch: the notification not yet claimed for sending
that gathers the plan's changes for the policy's ``notice_grace``. The first member
decides the batch's kind (``kind_for``): the first placement of a plan's visits is
its ``booking_confirmation``, a waitlist offer's visit booked is ``offer_accepted``,
a plan outcome is ``plan_update``, anything later a ``visit_change``. Whatever comes
while the batch waits joins it, so a revision that moves five visits, and the
revision itself, make one message whatever order the topics deliver them in.

At send time the members are netted per visit (``changes``): a visit booked and
cancelled again, or moved and moved back, inside the grace period says nothing, and
a batch that nets to nothing is not sent (Jane's "quick undo" rule). A member names
times and sequence numbers only: nothing clinical is kept (the plan outcome is a
code the templates word in the client's language; never a reason)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from shared.events import EventData, VisitBooked
from shared.events.plans import PlanCompleted, PlanRevised
from shared.events.visits import BookingWaitlisted, VisitCancelled, VisitRescheduled
from shared.vocabulary import NotificationKind

BATCH_KINDS: Final[frozenset[NotificationKind]] = frozenset(
    {"booking_confirmation", "visit_change", "plan_update", "offer_accepted"}
)

Outcome = Literal["reassessment", "taper", "referral", "completed", "lapsed", "cleared", "review"]

# plan.revised change -> what the client is told (a change not named is told through
# the visits it moves, if any)
REVISION_OUTCOMES: Final[dict[str, Outcome]] = {
    "reassess": "reassessment",
    "refer": "referral",
    "taper": "taper",
    "medical_check": "cleared",
    "review_overdue": "review",
}
# plan.completed outcome -> what the client is told
COMPLETION_OUTCOMES: Final[dict[str, Outcome]] = {
    "course_complete": "completed",
    "goals_met": "completed",
    "referred": "referral",
    "lapsed": "lapsed",
}


def plan_outcome(event: EventData) -> Outcome | None:
    """What of a plan event the client must know, if anything."""
    if isinstance(event, PlanRevised):
        return REVISION_OUTCOMES.get(event.change)
    if isinstance(event, PlanCompleted):
        return COMPLETION_OUTCOMES.get(event.outcome, "completed")
    return None


def member(
    event_id: str, event: EventData, *, known_start: str | None = None
) -> dict[str, Any] | None:
    """The batch member an event makes (None: the client need not be told of it).
    ``known_start``: the visit's start as the notifier knew it before this event."""
    base: dict[str, Any] = {"event_id": event_id}
    if isinstance(event, VisitBooked):
        return {
            **base,
            "type": "booked",
            "visit_id": event.visit_id,
            "start": event.start.isoformat(),
            "known_start": known_start,
            "sequence": event.sequence,
            "sessions_total": event.sessions_total,
            "makeup": event.makeup_for is not None,
        }
    if isinstance(event, VisitRescheduled):
        return {
            **base,
            "type": "rescheduled",
            "visit_id": event.visit_id,
            "start": event.start.isoformat(),
            "known_start": event.previous_start.isoformat(),
        }
    if isinstance(event, VisitCancelled):
        if event.by == "client" or event.cause == "client":
            return None  # the client asked for it: they know
        return {
            **base,
            "type": "cancelled",
            "visit_id": event.visit_id,
            "known_start": known_start,
            "cause": event.cause,
        }
    if isinstance(event, BookingWaitlisted):
        return {
            **base,
            "type": "waitlisted",
            "sequence": event.sequence,
            "sessions_total": event.sessions_total,
            "makeup": event.makeup_for is not None,
        }
    outcome = plan_outcome(event)
    if outcome is None:
        return None
    maintenance = isinstance(event, PlanCompleted) and event.maintenance is not None
    return {**base, "type": "plan", "outcome": outcome, "maintenance": maintenance}


def kind_for(first: Mapping[str, Any], *, confirmed: bool, offered: bool) -> NotificationKind:
    """The kind of a batch its ``first`` member opens. ``confirmed``: the plan's visits
    were confirmed before; ``offered``: the visit booked was a waitlist offer's."""
    if first["type"] == "plan":
        return "plan_update"
    if first["type"] == "booked" and offered:
        return "offer_accepted"
    if first["type"] in ("booked", "waitlisted") and not confirmed:
        return "booking_confirmation"
    return "visit_change"


@dataclass(frozen=True)
class Booked:
    visit_id: str
    start: datetime
    sequence: int | None
    sessions_total: int | None
    makeup: bool = False


@dataclass(frozen=True)
class Moved:
    visit_id: str
    previous: datetime
    start: datetime


@dataclass(frozen=True)
class Changes:
    """What a batch tells, netted: the visits new to the client, moved, cancelled
    (each in time order), the sessions still waiting for a slot, the plan outcome."""

    booked: list[Booked] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    cancelled: list[datetime] = field(default_factory=list)
    waitlisted: int = 0
    outcome: Outcome | None = None
    maintenance: bool = False

    @property
    def empty(self) -> bool:
        return not (self.booked or self.moved or self.cancelled or self.waitlisted or self.outcome)


def changes(members: Iterable[Mapping[str, Any]]) -> Changes:
    """The members of a batch netted per visit, in the order they joined: a visit's
    start before its first member against its start after its last."""
    before: dict[str, str | None] = {}
    after: dict[str, str | None] = {}
    booked: dict[str, Mapping[str, Any]] = {}
    waitlisted: set[int] = set()
    outcome: Outcome | None = None
    maintenance = False
    for m in members:
        kind = m["type"]
        if kind == "plan":
            outcome, maintenance = m["outcome"], bool(m.get("maintenance"))
            continue
        if kind == "waitlisted":
            waitlisted.add(int(m["sequence"]))
            continue
        visit_id = m["visit_id"]
        before.setdefault(visit_id, m.get("known_start"))
        after[visit_id] = m.get("start") if kind != "cancelled" else None
        if kind == "booked":
            booked[visit_id] = m
            waitlisted.discard(int(m["sequence"]))  # placed since it waited
    result = Changes(waitlisted=len(waitlisted), outcome=outcome, maintenance=maintenance)
    for visit_id, was in before.items():
        now = after[visit_id]
        if was == now:
            continue
        if was is None and now is not None:
            m = booked.get(visit_id, {})
            result.booked.append(
                Booked(
                    visit_id=visit_id,
                    start=datetime.fromisoformat(now),
                    sequence=m.get("sequence"),
                    sessions_total=m.get("sessions_total"),
                    makeup=bool(m.get("makeup")),
                )
            )
        elif was is not None and now is None:
            result.cancelled.append(datetime.fromisoformat(was))
        elif was is not None and now is not None:
            was_at, now_at = datetime.fromisoformat(was), datetime.fromisoformat(now)
            result.moved.append(Moved(visit_id, was_at, now_at))
    result.booked.sort(key=lambda b: b.start)
    result.moved.sort(key=lambda m: m.start)
    result.cancelled.sort()
    return result
