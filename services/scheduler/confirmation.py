"""Confirming a visit (pure: no I/O, no clock; ``now`` is an argument).

A client confirms a visit from the reminder's link, by texting "Y", or through the
front desk: ``visit.confirmed``. What is confirmed is the visit *at its start*: a
visit moved since needs confirming again, so the calendar calls a booked visit
``confirmed`` only while it stands where it was confirmed. A confirmation is a fact
about the client's intent and changes nothing on the calendar: the stored status
stays ``booked`` (booking, moves and the waitlist read that), and the views derive
the status they show (``shown_status``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from services.scheduler.store import VisitStatus
from shared.events.visits import VisitBooked, VisitConfirmed
from shared.vocabulary import ConfirmedVia

# what the client's visits and the day's calendar show: the stored status, and
# ``confirmed`` for a booked visit confirmed at its current start
ShownStatus = Literal[
    "booked", "confirmed", "cancelled", "completed", "no_show", "offered", "released"
]


def salt_of(visit: VisitBooked) -> str:
    """What tells apart the confirmations of one visit: its start. One per visit and
    start, so a repeat finds the first and a visit moved since does not."""
    return str(int(visit.start.timestamp()))


def refusal(visit: VisitBooked, *, now: datetime) -> str | None:
    """Why a booked ``visit`` cannot be confirmed at ``now``, or None: once it has
    started there is nothing left to confirm."""
    if now < visit.start:
        return None
    local = visit.start.astimezone(ZoneInfo(visit.timezone))
    return f"Visit {visit.visit_id} started {local:%a %Y-%m-%d %H:%M}; it cannot be confirmed."


def confirmation(visit: VisitBooked, *, via: ConfirmedVia, now: datetime) -> VisitConfirmed:
    """The confirmation of ``visit`` at its current start, made ``via`` at ``now``."""
    return VisitConfirmed(
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=visit.client_id,
        location_id=visit.location_id,
        start=visit.start,
        via=via,
        confirmed_at=now,
    )


def shown_status(state: VisitStatus, *, confirmed: bool) -> ShownStatus:
    """The status a view shows: ``confirmed`` for a booked visit confirmed at its
    current start (``confirmed``), else the stored one."""
    return "confirmed" if state == "booked" and confirmed else state


__all__ = ["ShownStatus", "confirmation", "refusal", "salt_of", "shown_status"]
