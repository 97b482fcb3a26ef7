"""HTTP routes of the staff directory: read it, and change it at run time.

Who may change what: an admin key anything; a front desk key time off and sick days
(adding and removing them) of a therapist who works at one of its locations. Ops
and front desk keys read the directory of their locations. Every change answers
with the directory version it made, its event (published on ``clinic.directory``)
and the visits it moved or cancelled (``directory_commands.py``).

A change given an id (``exception_id``, ``closure_id``) is safe to send again: the
same id with the same content answers 200 with the change as it stands and changes
nothing; the same id with other content is a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.scheduler.directory import (
    CHAIN,
    OFF,
    AddClosure,
    AddException,
    Change,
    Closure,
    Directory,
    DirectoryError,
    ExceptionKind,
    RemoveClosure,
    RemoveException,
    SetHours,
    SetPolicy,
    StaffException,
    StaffPolicy,
    parse_error,
)
from services.scheduler.directory_commands import Applied, EventOf, change_directory
from services.scheduler.directory_store import DirectoryStore
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.chain import OpeningRange, Turnover, WeeklyHours
from shared.errors import errors
from shared.events.base import EventData
from shared.events.directory import (
    DirectoryClosureAdded,
    DirectoryClosureRemoved,
    DirectoryExceptionAdded,
    DirectoryExceptionRemoved,
    DirectoryHoursSet,
    DirectoryPolicySet,
)
from shared.routes import runtime_of
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/directory", tags=["directory"])

Id = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExceptionRequest(_Body):
    exception_id: Id | None = Field(
        default=None, description="an id of your own makes the request safe to repeat"
    )
    therapist_id: str
    kind: ExceptionKind
    start_date: date
    end_date: date = Field(description="the last day it holds, inclusive")
    location_id: str | None = Field(
        default=None, description="extra_shift and changed_hours: where those hours are worked"
    )
    ranges: list[OpeningRange] = Field(
        default_factory=list,
        description="time_off/sick: the hours off (empty: the whole day); extra_shift: the "
        "hours added; changed_hours: the day's hours instead (empty: not working)",
    )
    note: str | None = Field(default=None, max_length=500)


class ClosureRequest(_Body):
    closure_id: Id | None = Field(
        default=None, description="an id of your own makes the request safe to repeat"
    )
    location_id: str
    start_date: date
    end_date: date = Field(description="the last day it holds, inclusive")
    hours: list[OpeningRange] = Field(
        default_factory=list, description="empty: closed; otherwise the days' holiday hours"
    )
    note: str | None = Field(default=None, max_length=500)


class HoursRequest(_Body):
    hours: WeeklyHours = Field(
        description='weekly hours at the location, e.g. {"mon": ["09:00-13:00"]}; {}: none'
    )


class PolicyRequest(_Body):
    location_id: str | None = Field(default=None, description="absent: the chain's default")
    turnover: Turnover = Field(description="the buffer after each visit, PT0S to PT2H")
    max_visits_per_day: int | None = Field(default=None, ge=1, le=20)


class DirectoryResult(BaseModel):
    version: int = Field(description="the directory version the change made (or found)")
    event_type: str
    data: dict[str, object]
    moved: list[str] = Field(default_factory=list, description="visits moved by the change")
    cancelled: list[str] = Field(
        default_factory=list, description="visits cancelled (staff_unavailable), to be made up"
    )


class DirectoryView(BaseModel):
    version: int
    hours: dict[str, dict[str, WeeklyHours]]
    exceptions: list[StaffException]
    closures: list[Closure]
    policies: dict[str, StaffPolicy]


@router.get("", response_model=DirectoryView, responses=errors(401, 403, 429))
async def read_directory(principal: CurrentPrincipal, request: Request) -> DirectoryView:
    """The directory as it stands, limited to the key's locations."""
    require_role(principal, "admin", "ops", "frontdesk")
    runtime = runtime_of(request)
    directory = await _store(runtime).current(fresh=True)
    mine = _therapists_reached(runtime, principal)
    return DirectoryView(
        version=directory.version,
        hours={
            tid: {loc: h for loc, h in at.items() if principal.reaches(loc)}
            for tid, at in directory.hours.items()
            if tid in mine
        },
        exceptions=sorted(
            (e for e in directory.exceptions.values() if e.therapist_id in mine),
            key=lambda e: (e.start_date, e.id),
        ),
        closures=sorted(
            (c for c in directory.closures.values() if principal.reaches(c.location_id)),
            key=lambda c: (c.start_date, c.id),
        ),
        policies={
            k: p for k, p in directory.policies.items() if k == CHAIN or principal.reaches(k)
        },
    )


@router.put(
    "/therapists/{therapist_id}/locations/{location_id}/hours",
    response_model=DirectoryResult,
    responses=errors(401, 403, 409, 413, 422, 429, 503),
)
async def set_hours(
    therapist_id: Annotated[str, Path()],
    location_id: Annotated[str, Path()],
    body: HoursRequest,
    principal: CurrentPrincipal,
    request: Request,
) -> DirectoryResult:
    """A therapist's weekly hours at one location (admin). A therapist works at one
    location a day: a weekday they work elsewhere is a 422."""
    require_role(principal, "admin")
    change = SetHours(therapist_id, location_id, body.hours)

    def event(directory: Directory, replanned: int, now: datetime) -> EventData:
        return DirectoryHoursSet(
            therapist_id=therapist_id,
            location_id=location_id,
            hours=body.hours,
            **_made(principal, directory, now),
        )

    return _result(await _change(request, lambda _: change, event))


@router.post(
    "/exceptions",
    status_code=status.HTTP_201_CREATED,
    response_model=DirectoryResult,
    responses={
        200: {"model": DirectoryResult, "description": "a repeat: the exception as it stands"},
        **errors(401, 403, 409, 413, 422, 429, 503),
    },
)
async def add_exception(
    body: ExceptionRequest, principal: CurrentPrincipal, request: Request, response: Response
) -> DirectoryResult:
    """Time off, a sick day, an extra shift or changed hours over dates. The therapist's
    visits those days move to the nearest slot that keeps each plan's cadence, or are
    cancelled (``staff_unavailable``) and made up."""
    runtime = runtime_of(request)
    _may_change_exception(runtime, principal, body.therapist_id, body.kind)
    fields = body.model_dump(exclude={"exception_id"})
    exception = _parsed(
        StaffException, {"id": body.exception_id or f"x-{uuid.uuid4().hex[:12]}", **fields}
    )

    def event(directory: Directory, replanned: int, now: datetime) -> EventData:
        return _exception_added(exception, directory, replanned, principal, now)

    return await _add_once(
        request,
        response,
        exception,
        lambda d: d.exceptions.get(exception.id),
        AddException(exception),
        event,
    )


@router.delete(
    "/exceptions/{exception_id}",
    response_model=DirectoryResult,
    responses=errors(401, 403, 404, 409, 429, 503),
)
async def remove_exception(
    exception_id: str, principal: CurrentPrincipal, request: Request
) -> DirectoryResult:
    """Take an exception back (the therapist works their regular hours those days)."""
    runtime = runtime_of(request)
    current = await _store(runtime).current(fresh=True)
    known = current.exceptions.get(exception_id)
    if known is None or known.therapist_id not in _therapists_reached(runtime, principal):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    _may_change_exception(runtime, principal, known.therapist_id, known.kind)

    def event(directory: Directory, replanned: int, now: datetime) -> EventData:
        return DirectoryExceptionRemoved(
            exception_id=exception_id,
            therapist_id=known.therapist_id,
            **_made(principal, directory, now),
        )

    return _result(await _change(request, lambda _: RemoveException(exception_id), event))


@router.post(
    "/closures",
    status_code=status.HTTP_201_CREATED,
    response_model=DirectoryResult,
    responses={
        200: {"model": DirectoryResult, "description": "a repeat: the closure as it stands"},
        **errors(401, 403, 409, 413, 422, 429, 503),
    },
)
async def add_closure(
    body: ClosureRequest, principal: CurrentPrincipal, request: Request, response: Response
) -> DirectoryResult:
    """Close a location over dates, or give those days holiday hours (admin). The
    visits those hours no longer hold move or are cancelled and made up."""
    require_role(principal, "admin")
    fields = body.model_dump(exclude={"closure_id"})
    closure = _parsed(Closure, {"id": body.closure_id or f"c-{uuid.uuid4().hex[:12]}", **fields})

    def event(directory: Directory, replanned: int, now: datetime) -> EventData:
        return _closure_added(closure, directory, replanned, principal, now)

    return await _add_once(
        request, response, closure, lambda d: d.closures.get(closure.id), AddClosure(closure), event
    )


@router.delete(
    "/closures/{closure_id}",
    response_model=DirectoryResult,
    responses=errors(401, 403, 404, 409, 429, 503),
)
async def remove_closure(
    closure_id: str, principal: CurrentPrincipal, request: Request
) -> DirectoryResult:
    """Reopen: the location keeps its regular hours those days (admin)."""
    require_role(principal, "admin")
    current = await _store(runtime_of(request)).current(fresh=True)
    known = current.closures.get(closure_id)
    if known is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")

    def event(directory: Directory, replanned: int, now: datetime) -> EventData:
        return DirectoryClosureRemoved(
            closure_id=closure_id, location_id=known.location_id, **_made(principal, directory, now)
        )

    return _result(await _change(request, lambda _: RemoveClosure(closure_id), event))


@router.put("/policy", response_model=DirectoryResult, responses=errors(401, 403, 409, 422, 429))
async def set_policy(
    body: PolicyRequest, principal: CurrentPrincipal, request: Request
) -> DirectoryResult:
    """The turnover after each visit and the daily maximum per therapist, for a location
    or the chain (admin). Visits that no longer keep them move or are cancelled."""
    require_role(principal, "admin")
    policy = StaffPolicy(turnover=body.turnover, max_visits_per_day=body.max_visits_per_day)
    change = SetPolicy(body.location_id, policy)

    def event(directory: Directory, replanned: int, now: datetime) -> EventData:
        return DirectoryPolicySet(
            location_id=body.location_id,
            turnover=body.turnover,
            max_visits_per_day=body.max_visits_per_day,
            replanned=replanned,
            **_made(principal, directory, now),
        )

    return _result(await _change(request, lambda _: change, event))


# --- wiring ----------------------------------------------------------------------------


def _store(runtime: Runtime) -> DirectoryStore:
    return DirectoryStore(runtime.redis, runtime.keys, runtime.chain)


def _therapists_reached(runtime: Runtime, principal: Principal) -> set[str]:
    """The therapists who work at one of the key's locations."""
    return {t.id for t in runtime.chain.therapists if any(map(principal.reaches, t.locations))}


def _may_change_exception(
    runtime: Runtime, principal: Principal, therapist_id: str, kind: ExceptionKind
) -> None:
    if principal.role == "admin":
        return
    require_role(principal, "frontdesk")
    if kind not in OFF:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "a front desk key records time off and sick days only"
        )
    if therapist_id not in _therapists_reached(runtime, principal):
        raise _invalid(("therapist_id",), f"no therapist {therapist_id!r} at this key's locations")


async def _change(
    request: Request, change_of: Callable[[Directory], Change], event_of: EventOf
) -> Applied:
    try:
        return await change_directory(runtime_of(request), change_of, event_of)
    except DirectoryError as exc:
        raise _invalid(exc.path, exc.message) from None


def _parsed(model: type[StaffException] | type[Closure], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = parse_error(exc)
        raise _invalid(error.path, error.message) from None


def _invalid(path: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", *path), "msg": message, "type": "value_error", "input": None}]
    )


def _made(principal: Principal, directory: Directory, now: datetime) -> dict[str, Any]:
    return {
        "changed_by": principal.name or principal.role,
        "changed_at": now,
        "version": directory.version,
    }


def _exception_added(
    exception: StaffException,
    directory: Directory,
    replanned: int,
    principal: Principal,
    now: datetime,
) -> DirectoryExceptionAdded:
    return DirectoryExceptionAdded(
        exception_id=exception.id,
        therapist_id=exception.therapist_id,
        kind=exception.kind,
        start_date=exception.start_date,
        end_date=exception.end_date,
        location_id=exception.location_id,
        ranges=exception.ranges,
        # minimum necessary: why a therapist is off stays in the directory, off the topic
        note=exception.note if exception.kind not in OFF else None,
        replanned=replanned,
        **_made(principal, directory, now),
    )


def _closure_added(
    closure: Closure, directory: Directory, replanned: int, principal: Principal, now: datetime
) -> DirectoryClosureAdded:
    return DirectoryClosureAdded(
        closure_id=closure.id,
        location_id=closure.location_id,
        start_date=closure.start_date,
        end_date=closure.end_date,
        hours=closure.hours,
        note=closure.note,
        replanned=replanned,
        **_made(principal, directory, now),
    )


async def _add_once(
    request: Request,
    response: Response,
    item: BaseModel,
    stored: Callable[[Directory], BaseModel | None],
    change: AddException | AddClosure,
    event_of: EventOf,
) -> DirectoryResult:
    """Add ``item`` unless the directory holds it under its id already: then a repeat
    answers what stands (200) and changes nothing; other content under the id is a 409."""
    current = await _store(runtime_of(request)).current(fresh=True)
    known = stored(current)
    if known is None:
        return _result(await _change(request, lambda _: change, event_of))
    if known != item:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "that id names a different change; use another id"
        )
    response.status_code = status.HTTP_200_OK
    event_type = (
        "directory.exception_added"
        if isinstance(change, AddException)
        else ("directory.closure_added")
    )
    return DirectoryResult(
        version=current.version, event_type=event_type, data=known.model_dump(mode="json")
    )


def _result(applied: Applied) -> DirectoryResult:
    return DirectoryResult(
        version=applied.directory.version,
        event_type=applied.event.event_type,
        data=applied.event.to_data(),
        moved=[f.visit_id for f in applied.replanned.moved],
        cancelled=[f.visit_id for f in applied.replanned.cancelled],
    )


__all__ = ["router"]
