"""The two ways a plan moves on, built one way for every rule that moves it: the
next version (``plan.revised``, everything the rule does not change carried over)
or the end of the course (``plan.completed``). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events.plans import PlanCompleted, PlanData, PlanRevised, Referral


def next_version(
    plan: PlanData,
    *,
    change: str,
    reason: str,
    sessions_done: int,
    now: datetime,
    **updates: Any,
) -> PlanRevised:
    """Version ``plan.version + 1``: ``plan`` with ``updates``, created ``now``."""
    base = plan.model_dump(exclude={"reason", "change", "sessions_done", "referral"})
    return PlanRevised(
        **{**base, "version": plan.version + 1, "created_at": now, **updates},
        reason=reason,
        change=change,
        sessions_done=sessions_done,
    )


def ended(
    plan: PlanData,
    *,
    outcome: str,
    reason: str,
    sessions_done: int,
    now: datetime,
    maintenance: str | None = None,
    refer_to: str | None = None,
) -> PlanCompleted:
    """The course ends with ``outcome``; ``refer_to`` recommends a referral there,
    for the same ``reason``."""
    return PlanCompleted(
        plan_id=plan.plan_id,
        version=plan.version,
        client_id=plan.client_id,
        location_id=plan.location_id,
        reason=reason,
        outcome=outcome,
        sessions_done=sessions_done,
        maintenance=maintenance,
        referral=None
        if refer_to is None
        else Referral(recommended=True, to=refer_to, detail=reason),
        completed_at=now,
    )
