"""What a client merge does to the planner's records (pure: records in, records out).

Both clients' plan records become one history under the survivor, each record
rewritten to name the survivor and marked with the id it was recorded under
(``merged_from``). No plan is dropped: when both clients had an active plan,
both stay active (their visits stay booked, their outcomes keep counting), and
the **current** one - the plan ``GET /plan`` shows, the one an assessment
revises - is the one created or revised last. The other becomes current again
if the current one completes first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BODIES = ("plan", "decline", "completion")


def rehomed_record(record: Mapping[str, Any], survivor: str, retired: str) -> dict[str, Any]:
    """A history record of ``retired`` as the survivor's."""
    out = dict(record)
    for name in BODIES:
        body = out.get(name)
        if isinstance(body, Mapping) and body.get("client_id") == retired:
            out[name] = {**body, "client_id": survivor}
    out.setdefault("merged_from", retired)
    return out


def rehomed_current(stored: Mapping[str, Any], survivor: str, retired: str) -> dict[str, Any]:
    """A plan's stored current version as the survivor's: kept as its history record
    (``store.py``), or in the older ``{"type", "data"}`` form."""
    if "plan" in stored:
        return rehomed_record(stored, survivor, retired)
    return {**stored, "data": {**stored["data"], "client_id": survivor}}


def active_plans(
    survivor: Mapping[str, float], retired: Mapping[str, float]
) -> tuple[dict[str, float], str | None]:
    """The survivor's active plans after the merge (plan id -> when it was created or
    last revised, epoch seconds) and the current one: the latest."""
    merged = {**retired, **survivor}
    current = max(merged, key=lambda plan_id: (merged[plan_id], plan_id), default=None)
    return merged, current
