"""HTTP routes of the scheduler that read the calendar: a location's day, a
therapist's week, free slots for a plan, a visit's iCalendar file and a client's
calendar feed.

The two calendar files are what a client opens from a message, without an API
key: they accept a signed link (``?sig=``, ``shared/links.py``) instead of the
bearer key; the signature names the one visit or client it opens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from services.scheduler import calendar_view, ics
from services.scheduler.client_names import view_names
from services.scheduler.commands import confirmed_now, moves_record, plan_needs
from services.scheduler.confirmation import ShownStatus, shown_status
from services.scheduler.directory_store import staffing_at
from services.scheduler.docs import CALENDAR_DAY_EXAMPLE
from services.scheduler.free_slots import FreeSlot, free_slots
from services.scheduler.store import CalendarStore, VisitStatus
from shared import links
from shared.auth import CurrentPrincipal, Principal, current_principal, require_role
from shared.errors import errors
from shared.events.visits import VisitBooked
from shared.openapi import KEY_OR_LINK, example_answer
from shared.routes import runtime_of, visible
from shared.runtime import Runtime
from shared.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["calendar"])

ICS = "text/calendar; charset=utf-8"
MAX_FREE_SLOT_DAYS = 62
NOT_VISITS = ("offered", "released")  # what one request may search; the horizon bounds it too
WEEK_READERS: tuple[Role, ...] = ("admin", "ops", "frontdesk", "therapist")


def _store(runtime: Runtime) -> CalendarStore:
    return CalendarStore(runtime.redis, runtime.keys)


@router.get(
    "/locations/{location_id}/calendar",
    response_model=calendar_view.LocationDay,
    responses={200: example_answer(CALENDAR_DAY_EXAMPLE), **errors(401, 404, 422, 429)},
)
async def location_calendar(
    location_id: str,
    principal: CurrentPrincipal,
    request: Request,
    day: Annotated[date, Query(alias="date", description="the local day, YYYY-MM-DD")],
) -> calendar_view.LocationDay:
    """One local day at a location: opening hours, and the visits the day holds per
    therapist and room (completed and no-show ones too; cancelled ones listed apart)
    with their status (``confirmed``: the client confirmed the visit
    at its start), the client's, therapist's and room's names and "3 of 8"."""
    runtime = runtime_of(request)
    if not runtime.chain.has_location(location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, [location_id])
    location = runtime.chain.location(location_id)
    start, end = calendar_view.day_bounds(day, location.zone)
    store = _store(runtime)
    visits = await store.location_visits(location_id, start=start, end=end)
    statuses = await store.visits([v.visit_id for v in visits])
    cancelled = await store.location_cancelled(location_id, start=start, end=end)
    return calendar_view.location_day(
        await staffing_at(runtime, location_id),
        day,
        visits=visits,
        offered={v.visit_id for v, state in statuses if state == "offered"},
        statuses=await _shown(store, statuses),
        names=await view_names(runtime, [v.client_id for v in [*visits, *cancelled]]),
        cancelled=cancelled,
    )


@router.get(
    "/therapists/{therapist_id}/week",
    response_model=calendar_view.TherapistWeek,
    responses=errors(401, 403, 404, 422, 429),
)
async def therapist_week(
    therapist_id: str,
    principal: CurrentPrincipal,
    request: Request,
    day: Annotated[date, Query(alias="date", description="a local day of the ISO week")],
) -> calendar_view.TherapistWeek:
    """A therapist's ISO week, Monday to Sunday, at every location they hold visits at
    that the key reaches: each local day's visits with status, names and "3 of 8".
    Front desk, ops and admin keys reaching one of the therapist's locations; a
    therapist key for its own week only (403 otherwise)."""
    runtime = runtime_of(request)
    therapist = next((t for t in runtime.chain.therapists if t.id == therapist_id), None)
    if therapist is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    require_role(principal, *WEEK_READERS)
    if principal.role == "therapist" and principal.therapist_id != therapist_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a therapist key reads its own week only")
    visible(principal, list(therapist.locations))
    store = _store(runtime)
    start, end = calendar_view.week_bounds(day)
    held = _reached(principal, await store.therapist_visits(therapist_id, start=start, end=end))
    visits = [v for v, _ in held]
    cancelled = [
        v
        for location_id in therapist.locations
        if principal.reaches(location_id)
        for v in await store.location_cancelled(location_id, start=start, end=end)
        if v.therapist_id == therapist_id
    ]
    return calendar_view.therapist_week(
        therapist_id,
        day,
        visits=visits,
        offered={v.visit_id for v, state in held if state == "offered"},
        statuses=await _shown(store, held),
        names=await view_names(runtime, [v.client_id for v in [*visits, *cancelled]]),
        cancelled=cancelled,
    )


def _reached(
    principal: Principal, visits: list[tuple[VisitBooked, VisitStatus]]
) -> list[tuple[VisitBooked, VisitStatus]]:
    """The visits at locations the key reaches, each judged by its own location."""
    return [(v, s) for v, s in visits if principal.reaches(v.location_id)]


async def _shown(
    store: CalendarStore, visits: list[tuple[VisitBooked, VisitStatus]]
) -> dict[str, ShownStatus]:
    """The status each visit shows (``confirmed`` for a booked visit confirmed at its
    current start: one read)."""
    confirmed = await confirmed_now(store, visits)
    return {
        v.visit_id: shown_status(state, confirmed=v.visit_id in confirmed) for v, state in visits
    }


@router.get(
    "/plans/{plan_id}/free-slots",
    response_model=list[FreeSlot],
    responses=errors(401, 404, 422, 429),
)
async def plan_free_slots(
    plan_id: str,
    principal: CurrentPrincipal,
    request: Request,
    first: Annotated[date, Query(alias="from", description="first local day")],
    last: Annotated[date, Query(alias="to", description="last local day")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[FreeSlot]:
    """Where a visit of the plan could go: therapists with the plan's skills (its
    requested therapist, if any), the plan's visit length, the client's own visits
    kept clear. At most ``limit`` slots, earliest first."""
    runtime = runtime_of(request)
    store = _store(runtime)
    needs = await plan_needs(store, plan_id)
    if needs is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, [needs.location_id])
    if last < first or (last - first) > timedelta(days=MAX_FREE_SLOT_DAYS):
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "to"),
                    "msg": f"'to' must be on or after 'from', at most {MAX_FREE_SLOT_DAYS} "
                    "days later",
                    "type": "value_error",
                    "input": last.isoformat(),
                }
            ]
        )
    now = runtime.clock.now()
    policy = runtime.chain.policy_for(needs.location_id)
    held = await store.intervals(needs.location_id, start=now, end=now + policy.horizon)
    return free_slots(
        staffing=await staffing_at(runtime, needs.location_id),
        held=held,
        first_day=first,
        last_day=last,
        policy=policy,
        now=now,
        minutes=needs.visit_minutes,
        skills=needs.scheduling.required_skills,
        therapist_id=needs.scheduling.therapist_id,
        client_id=needs.client_id,
        limit=limit,
    )


async def may_open(
    request: Request, sig: str | None, *names: str, roles: Sequence[Role] = ()
) -> list[str] | None:
    """None when a current signature opens what ``names`` name, else the locations the
    bearer key reaches (401 without a key; 403 when ``roles`` are given and the key
    has none of them)."""
    runtime = runtime_of(request)
    secret = runtime.base.settings.link_secret.get_secret_value()
    if sig is not None and links.verify(secret, sig, *names, now=runtime.clock.now()):
        return None
    principal = await current_principal(request)
    if roles:
        require_role(principal, *roles)
    return list(principal.locations)


def reaches(locations: list[str] | None, location_id: str) -> bool:
    return locations is None or "*" in locations or location_id in locations


@router.get(
    "/visits/{visit_id}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **errors(401, 404, 429)},
    openapi_extra=KEY_OR_LINK,
)
async def visit_calendar_file(
    visit_id: str,
    request: Request,
    sig: Annotated[str | None, Query(description="signature of a link from a message")] = None,
) -> Response:
    """The visit as an iCalendar file, in the location's time zone (TZID), with a
    VTIMEZONE so the time stays right in any calendar across DST."""
    reach = await may_open(request, sig, "visit", visit_id)
    runtime = runtime_of(request)
    store = _store(runtime)
    found = await store.visit(visit_id)
    # an offered or released visit is a waitlist offer, not (yet) the client's visit
    if found is None or found[1] in NOT_VISITS or not reaches(reach, found[0].location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visit, state = found
    therapist = next((t for t in runtime.chain.therapists if t.id == visit.therapist_id), None)
    body = ics.visit_ics(
        visit,
        location=runtime.chain.location(visit.location_id),
        therapist_name=therapist.name if therapist else None,
        chain_name=runtime.chain.chain.name,
        now=runtime.clock.now(),
        revision=int(await store.record(moves_record(visit_id)) or 0),
        cancelled=state == "cancelled",
    )
    return Response(
        body,
        media_type=ICS,
        headers={"Content-Disposition": f'attachment; filename="visit-{visit_id}.ics"'},
    )


@router.get(
    "/clients/{client_id}/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **errors(401, 404, 429)},
    openapi_extra=KEY_OR_LINK,
)
async def client_calendar_feed(
    client_id: str,
    request: Request,
    sig: Annotated[str | None, Query(description="signature of a link from a message")] = None,
) -> Response:
    """Every visit of the client as one calendar feed; cancelled ones as cancelled."""
    reach = await may_open(request, sig, "client", client_id)
    runtime = runtime_of(request)
    store = _store(runtime)
    visits = [
        (v, s)
        for v, s in await store.client_visits(client_id)
        if s not in NOT_VISITS and reaches(reach, v.location_id)
    ]
    if not visits:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    body = ics.client_feed_ics(
        [v for v, _ in visits],
        locations={loc.id: loc for loc in runtime.chain.locations},
        therapist_names={t.id: t.name for t in runtime.chain.therapists},
        chain_name=runtime.chain.chain.name,
        now=runtime.clock.now(),
        cancelled={v.visit_id for v, s in visits if s == "cancelled"},
        revisions={
            v.visit_id: int(await store.record(moves_record(v.visit_id)) or 0) for v, _ in visits
        },
    )
    return Response(body, media_type=ICS)
