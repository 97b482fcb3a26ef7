"""What the planner's HTTP API shows: a client's plan records as typed views.

Pure: the stored records (``store.PlanStore.history``) and a plan's progress in,
response models out. A plan version is ``superseded`` once a later version or
the plan's completion exists. The current plan is the latest record, and a
completed plan is shown with its last version next to the completion - unless
another plan of the client is still active (after a merge: ``merging.py``),
which is then current.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from services.planner.progress import Progress, improvement
from services.planner.trajectory import readings
from shared.events.plans import PlanCompleted, PlanData, PlanDeclined, Referral
from shared.retention import RetiredCourse
from shared.topics import PLANS

Status = Literal["active", "superseded", "completed", "declined"]


class PlanVersion(PlanData):
    """One version of a plan: ``plan.created`` fields, plus why a revision was made."""

    reason: str | None = Field(default=None, description="plan.revised: why")
    change: str | None = Field(
        default=None,
        description="plan.revised: reassess|refer|taper|protocol|medical_check|review_overdue",
    )
    sessions_done: int | None = Field(default=None, description="plan.revised: visits already done")
    referral: Referral | None = None


class PlanRecord(BaseModel):
    """One entry of a client's plan history."""

    status: Status
    event_type: Literal["plan.created", "plan.revised", "plan.declined", "plan.completed"]
    plan: PlanVersion | None = None
    decline: PlanDeclined | None = None
    completion: PlanCompleted | None = None
    merged_from: str | None = Field(
        default=None, description="the client id this was recorded under, before a merge"
    )


class PainReading(BaseModel):
    """One point of the trajectory: the pain carried into a visit, or a check-in's."""

    at: AwareDatetime
    pain: int
    source: Literal["visit", "checkin"]


class PlanProgress(BaseModel):
    """How the course is going (DOMAIN.md 5: progress is measured, not assumed)."""

    sessions_done: int = Field(
        description="visits completed; a cancelled or missed visit is no session done"
    )
    sessions_total: int
    pain_carried_in: list[int] = Field(description="pain before each completed visit, oldest first")
    trajectory: list[PainReading] = Field(
        default_factory=list,
        description="every pain reading, oldest first: the pain carried into each completed "
        "visit and the pain reported at each check-in between visits",
    )
    improvement: float | None = Field(
        description="lasting improvement from the first visit to the latest reading (a visit "
        "or a check-in), 0.3 = 30 %; null before a second reading"
    )
    next_review_after_sessions: int | None = Field(
        description="the review point, in sessions done; null once the plan has ended"
    )
    review_by: date
    finished: bool


class CurrentPlan(PlanRecord):
    """The client's current plan (or decline) with its rationale and progress."""

    progress: PlanProgress | None = None


class RetiredCourseView(BaseModel):
    """A finished course that has left the planner's hot state after its location's
    ``keep_finished_courses``: what is kept of it, and where its whole history is."""

    plan_id: str = Field(description="the plan (a declined intake: the plan id it would have had)")
    ended_at: AwareDatetime
    outcome: str = Field(description="the plan.completed outcome, or declined")
    retained_until: AwareDatetime = Field(description="when it left the hot state")
    history: str = Field(default=PLANS.name, description="the topic that keeps its history")


class PlanHistory(BaseModel):
    client_id: str
    versions: list[PlanRecord] = Field(
        description="every version, decline and completion of the courses in the hot state"
    )
    retired_courses: list[RetiredCourseView] = Field(
        default_factory=list,
        description="finished courses whose records have left the hot state, oldest first",
    )


def history_view(
    client_id: str,
    records: list[dict[str, Any]],
    retired: list[RetiredCourseView] | None = None,
) -> PlanHistory:
    return PlanHistory(
        client_id=client_id, versions=_with_status(records), retired_courses=retired or []
    )


def retired_view(course: RetiredCourse, keep: timedelta) -> RetiredCourseView:
    return RetiredCourseView(
        plan_id=course.plan_id,
        ended_at=course.ended_at,
        outcome=course.outcome,
        retained_until=course.retained_until(keep),
    )


def gone_detail(retired: list[RetiredCourseView]) -> str:
    """The 404 of a client's current plan when every course of theirs has left the hot
    state: which, until when it was kept, where its history is."""
    latest = retired[-1]
    return (
        f"no course of this client is in the planner's state: {len(retired)} finished "
        f"course(s) left it after the retention period; the latest, plan {latest.plan_id}, "
        f"ended {latest.ended_at.date()} ({latest.outcome}) and was kept until "
        f"{latest.retained_until.date()}; the history is on {latest.history}"
    )


def current_view(
    records: list[dict[str, Any]], progress: Progress | None, *, active: str | None = None
) -> CurrentPlan:
    """The latest record of the ``active`` plan, else the latest record; a completion
    comes with the plan's last version."""
    entries = _with_status(records)
    latest = entries[_current_index(records, active)]
    if latest.completion is not None:
        plan_id = latest.completion.plan_id
        last = next(
            (e.plan for e in reversed(entries) if e.plan and e.plan.plan_id == plan_id), None
        )
        latest = latest.model_copy(update={"plan": last})
    shown = None
    if latest.plan is not None and progress is not None:
        shown = progress_view(latest.plan, progress)
    return CurrentPlan(**dict(latest), progress=shown)


def progress_view(plan: PlanData, progress: Progress) -> PlanProgress:
    started = progress.version_started_after
    return PlanProgress(
        sessions_done=progress.sessions_done,
        sessions_total=plan.sessions_total,
        pain_carried_in=[v.pain_before for v in progress.visits],
        trajectory=[PainReading(at=r.at, pain=r.pain, source=r.source) for r in readings(progress)],
        improvement=improvement(progress),
        next_review_after_sessions=None
        if progress.finished
        else started + plan.review_after_sessions,
        review_by=plan.review_by,
        finished=progress.finished,
    )


def current_plan_id(records: list[dict[str, Any]], *, active: str | None = None) -> str | None:
    """The plan the current record belongs to, if it is a plan or its completion."""
    return _plan_id_of(records[_current_index(records, active)]) if records else None


def _current_index(records: list[dict[str, Any]], active: str | None) -> int:
    """The current record: the latest, unless it completes a plan while another
    (``active``, e.g. one a merge brought) goes on: then that plan's latest."""
    latest = len(records) - 1
    if records[latest]["status"] != "completed":
        return latest
    found = [n for n, r in enumerate(records) if active is not None and _plan_id_of(r) == active]
    return found[-1] if found else latest


def _with_status(records: list[dict[str, Any]]) -> list[PlanRecord]:
    out: list[PlanRecord] = []
    for n, record in enumerate(records):
        later = records[n + 1 :]
        status: Status = record["status"]
        plan = record.get("plan")
        if plan is not None and any(_plan_id_of(r) == plan["plan_id"] for r in later):
            status = "superseded"
        out.append(PlanRecord.model_validate({**record, "status": status}))
    return out


def _plan_id_of(record: dict[str, Any]) -> str | None:
    """The plan a version or completion record belongs to (a decline has none)."""
    body = record.get("plan") or record.get("completion") or {}
    plan_id = body.get("plan_id")
    return None if plan_id is None else str(plan_id)
