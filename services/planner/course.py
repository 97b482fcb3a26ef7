"""The course of treatment: condition, severity, session count and cadence
(DOMAIN.md 1 and 5). Pure; the numbers come from ``knowledge.py``, the
acute/chronic rule from ``shared/pain.py``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from services.planner import knowledge as kb
from shared.chain import Policy
from shared.events.intake import Complaint, Precaution, Preferences
from shared.events.plans import Phase
from shared.pain import condition_for as condition_for  # re-exported: the course's condition
from shared.pain import months_since, nerve_signs
from shared.vocabulary import Condition, Modality


def severity_score(
    complaints: Sequence[Complaint], *, on: date, precautions: Sequence[Precaution] = ()
) -> float:
    """How severe and complex the case is, from 0.0 to 1.0 (DOMAIN.md 5).

    With the weights of ``knowledge.SEVERITY``::

        severity = 0.40 * worst intensity / 10
                 + 0.20 * min(1, (distinct regions - 1) / 3)
                 + 0.15 * (1 if any complaint is tingling, numbness or burning)
                 + 0.15 * min(1, months since the oldest onset / 12)
                 + 0.10 * min(1, distinct precautions / 2)

    Intensity and the number of areas are DOMAIN.md 5's "more severe or complex
    cases"; nerve signs (DOMAIN.md 1) add complexity; precautions stand for the
    personal factors, since they lower pressure and slow progress.
    """
    w = kb.SEVERITY
    if not complaints:
        return 0.0
    regions = len({c.region for c in complaints})
    nerve = any(nerve_signs(c) for c in complaints)
    months = max(months_since(c, on=on) for c in complaints)
    score = (
        w.intensity * max(c.intensity for c in complaints) / 10
        + w.regions * min(1.0, (regions - 1) / (w.regions_for_full - 1))
        + w.nerve_signs * (1.0 if nerve else 0.0)
        + w.chronicity * min(1.0, months / w.months_for_full)
        + w.personal * min(1.0, len({p.code for p in precautions}) / w.precautions_for_full)
    )
    return min(1.0, max(0.0, score))


def sessions_for(condition: Condition, severity: float) -> int:
    """DOMAIN.md 5: place the count inside the course range by severity.

    ``sessions = low + round_half_up(severity * (high - low))`` with (low, high)
    from ``knowledge.COURSES``: acute 3-5, chronic 6-12. Severity is clamped to
    0..1, so the count never leaves the range.
    """
    low, high = kb.COURSES[condition].sessions
    clamped = min(1.0, max(0.0, severity))
    return low + math.floor(clamped * (high - low) + 0.5)


def max_sessions_per_week(preferences: Preferences, *, policy: Policy) -> int:
    """The client's weekly limit, never above the clinic policy's."""
    wanted = preferences.max_sessions_per_week or policy.max_sessions_per_week
    return min(wanted, policy.max_sessions_per_week)


def phases_for(
    condition: Condition,
    sessions_total: int,
    *,
    max_per_week: int,
    min_gap_days: int = kb.SORENESS_GAP_DAYS,
) -> list[Phase]:
    """DOMAIN.md 5: the cadence of the course, as phases that sum to ``sessions_total``.

    Acute: one phase, twice weekly (weekly if the client allows only one visit a
    week). Chronic: the last ``taper_sessions`` visits every two weeks; before
    them, twice weekly stepping down to weekly for the last ``step_down_weeks``
    (10 sessions: 2/week x3 weeks, weekly x2, every two weeks x2). At one visit a
    week, weekly for at most 6 weeks, the rest every two weeks.
    """
    if sessions_total < 1:
        raise ValueError("a course has at least one session")
    course = kb.COURSES[condition]
    twice = max(1, min(max_per_week, course.max_per_week)) >= 2
    if course.taper_sessions == 0:
        cadence = kb.TWICE_WEEKLY if twice else kb.WEEKLY
        return [cadence_phase("initial", cadence, sessions_total, min_gap_days)]
    taper = min(course.taper_sessions, sessions_total - 1)
    weekly_part = sessions_total - taper
    if twice:
        step_down = min(course.step_down_weeks, weekly_part)
        step_down -= (weekly_part - step_down) % 2  # twice weekly in whole weeks
        intensive = weekly_part - step_down
    else:
        intensive, step_down = 0, min(weekly_part, course.weeks[1])
        taper = sessions_total - step_down
    parts = (
        ("intensive", kb.TWICE_WEEKLY, intensive),
        ("step-down", kb.WEEKLY, step_down),
        ("taper", kb.EVERY_TWO_WEEKS, taper),
    )
    return [cadence_phase(name, cadence, n, min_gap_days) for name, cadence, n in parts if n > 0]


def modality_for(preferred: Modality) -> Modality:
    """DOMAIN.md 4: the client's choice; "either" gets the default (NMT)."""
    return kb.DEFAULT_MODALITY if preferred == "either" else preferred


def cadence_phase(name: str, cadence: kb.Cadence, sessions: int, min_gap_days: int) -> Phase:
    interval = max(cadence.interval_days, min_gap_days)
    per_week = min(cadence.per_week, round(7 / interval, 2))
    if interval % 7 == 0:
        rrule = f"FREQ=WEEKLY;INTERVAL={interval // 7};COUNT={sessions}"
    else:
        rrule = f"FREQ=DAILY;INTERVAL={interval};COUNT={sessions}"
    return Phase(
        name=name,
        sessions=sessions,
        interval_days=interval,
        per_week=per_week,
        weeks=math.ceil(sessions / per_week),
        rrule=rrule,
    )


def remaining_phases(phases: Sequence[Phase], done: int) -> list[Phase]:
    """The course's phases without its first ``done`` sessions, the same cadences:
    what the scheduler books from session ``done + 1`` (after a red flag's assessment
    visit, ``medical_check.py``; after a review date passed, ``reviews.py``)."""
    left: list[Phase] = []
    for phase in phases:
        drop = min(done, phase.sessions)
        done -= drop
        sessions = phase.sessions - drop
        if sessions == 0:
            continue
        left.append(
            phase
            if drop == 0
            else phase.model_copy(
                update={
                    "sessions": sessions,
                    "weeks": math.ceil(sessions / phase.per_week),
                    "rrule": _with_count(phase.rrule, sessions),
                }
            )
        )
    return left


def _with_count(rrule: str, count: int) -> str:
    parts = [p for p in rrule.split(";") if not p.startswith("COUNT=")]
    return ";".join([*parts, f"COUNT={count}"])
