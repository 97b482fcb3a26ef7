"""The pain trajectory of a plan (DOMAIN.md 5, "progress is measured, not assumed").

Every pain reading the plan has, in time order: the pain carried into each visit
(``visit.completed``'s pain_before) and the pain the client reported at a check-in
between visits (``checkin.replied``). Improvement runs from the pain carried into the
first visit to the latest reading after it (``knowledge.py``).

Pure: events in, the plan's progress out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from shared.events.notifications import CheckinReplied
from shared.events.visits import VisitCompleted


class VisitOutcome(BaseModel):
    visit_id: str
    pain_before: int = Field(ge=0, le=10)
    pain_after: int = Field(ge=0, le=10)
    completed_at: AwareDatetime


class CheckinOutcome(BaseModel):
    """The pain a client reported at a check-in between visits."""

    notification_id: str
    pain: int = Field(ge=0, le=10)
    replied_at: AwareDatetime


class Progress(BaseModel):
    """What has happened under one plan, across its versions."""

    plan_id: str
    visits: list[VisitOutcome] = Field(default_factory=list)
    checkins: list[CheckinOutcome] = Field(
        default_factory=list,
        exclude=True,  # kept apart, answer by answer (``store.PlanStore.record_checkin``)
        description="the check-in answers, oldest first",
    )
    version_started_after: int = Field(
        default=0, description="visits already done when the current version began"
    )
    poor_reviews: int = 0
    reviewed_version: int = Field(
        default=0, description="the last plan version whose review was made"
    )
    finished: bool = False

    @property
    def sessions_done(self) -> int:
        return len(self.visits)


@dataclass(frozen=True)
class Reading:
    """One point of the trajectory."""

    at: datetime
    pain: int
    source: Literal["visit", "checkin"]


def recorded(progress: Progress, visit: VisitCompleted) -> Progress:
    """The progress with one more visit; a visit already recorded changes nothing."""
    if any(v.visit_id == visit.visit_id for v in progress.visits):
        return progress
    outcome = VisitOutcome(
        visit_id=visit.visit_id,
        pain_before=visit.pain_before,
        pain_after=visit.pain_after,
        completed_at=visit.completed_at,
    )
    visits = sorted([*progress.visits, outcome], key=lambda v: v.completed_at)
    return progress.model_copy(update={"visits": visits})


def answer_of(reply: CheckinReplied) -> CheckinOutcome:
    return CheckinOutcome(
        notification_id=reply.notification_id, pain=reply.pain, replied_at=reply.replied_at
    )


def with_checkins(progress: Progress, answers: Iterable[CheckinOutcome]) -> Progress:
    """The progress with the plan's check-in answers, one per check-in, oldest first."""
    known = {c.notification_id: c for c in [*progress.checkins, *answers]}
    checkins = sorted(known.values(), key=lambda c: (c.replied_at, c.notification_id))
    return progress.model_copy(update={"checkins": checkins})


def readings(progress: Progress) -> list[Reading]:
    """The trajectory, oldest first: a visit's pain carried in is read when the visit
    was recorded, a check-in when the client answered (a visit first at a tie)."""
    points = [Reading(v.completed_at, v.pain_before, "visit") for v in progress.visits]
    points += [Reading(c.replied_at, c.pain, "checkin") for c in progress.checkins]
    return sorted(points, key=lambda r: (r.at, r.source != "visit"))


def improvement(progress: Progress) -> float | None:
    """Lasting improvement (see ``knowledge.py``): from the pain carried into the first
    visit to the latest reading after it, a visit or a check-in. None before there is
    a second reading, or without pain to improve on."""
    if not progress.visits or progress.visits[0].pain_before == 0:
        return None
    points = readings(progress)
    first = next(n for n, r in enumerate(points) if r.source == "visit")
    if first == len(points) - 1:
        return None
    return (points[first].pain - points[-1].pain) / points[first].pain


def trajectory(progress: Progress) -> str:
    """The readings as the reasons quote them, e.g. ``8 -> 7 (check-in) -> 7``."""
    return " -> ".join(
        str(r.pain) if r.source == "visit" else f"{r.pain} (check-in)" for r in readings(progress)
    )
