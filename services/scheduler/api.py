"""HTTP routes of the scheduler: a client's visits and the commands on one visit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.scheduler import commands, docs, link_access
from services.scheduler.calendar_view import Names, room_name, sequence_label
from services.scheduler.client_names import view_names
from services.scheduler.confirmation import ShownStatus, shown_status
from services.scheduler.store import CalendarStore, VisitStatus
from shared.auth import CurrentPrincipal, require_role
from shared.errors import errors
from shared.events.visits import TriggerPointOutcome, VisitBooked
from shared.openapi import KEY_OR_LINK, example_answer, example_body
from shared.retention import Retirement
from shared.routes import runtime_of
from shared.topics import VISITS
from shared.vocabulary import CancelledBy, ConfirmedVia, Role

router = APIRouter(prefix="/v1", tags=["visits"])
Route = TypeVar("Route", bound=Callable[..., Awaitable[Any]])

CHANGERS: tuple[Role, ...] = ("frontdesk", "therapist", "admin", "service")
COMPLETERS: tuple[Role, ...] = ("therapist", "admin", "service")


class VisitView(BaseModel):
    visit_id: str
    plan_id: str
    plan_version: int
    client_id: str
    location_id: str
    therapist_id: str
    room: int
    start: AwareDatetime
    end: AwareDatetime
    local_start: str = Field(description="start in the location's time zone (ISO 8601)")
    timezone: str
    sequence: int
    sessions_total: int
    phase: str | None = None
    makeup_for: str | None = Field(
        default=None, description="a make-up visit: the cancelled or missed visit it replaces"
    )
    status: ShownStatus = Field(
        description="the visit's status: booked, confirmed (booked, and confirmed at its "
        "current start), completed, cancelled, no_show; offered: held for the client by a "
        "waitlist offer"
    )
    client_name: str | None = Field(
        default=None, description="the client's name; null when the scheduler does not know it"
    )
    therapist_name: str | None = None
    location_name: str | None = None
    room_name: str = Field(examples=["Room 2"])
    sequence_label: str = Field(examples=["3 of 8"], description="sequence of sessions_total")
    cadence_note: str | None = Field(
        default=None,
        description="when the visit is not on the day the plan's cadence asks for: what was "
        "booked instead and why",
    )


class RetiredCourseView(BaseModel):
    """A finished course whose visits left the scheduler after the location's
    ``keep_finished_courses``: what is kept of it, and where its history is."""

    plan_id: str
    location_id: str
    ended_at: AwareDatetime
    outcome: str = Field(description="how the plan ended (plan.completed's outcome)")
    retained_until: AwareDatetime = Field(description="until when its visits were kept here")
    history: str = Field(
        default=VISITS.name, description="the topic that keeps the course's visit events"
    )


class ClientVisits(BaseModel):
    client_id: str
    client_name: str | None = Field(
        default=None, description="the client's name; null when the scheduler does not know it"
    )
    visits: list[VisitView]
    retired_courses: list[RetiredCourseView] = Field(
        default_factory=list,
        description="the client's courses retired after their retention period, oldest "
        "first: their visits are no longer listed (nor their ids read), their events stay "
        "on clinic.visits",
    )


def visit_view(
    visit: VisitBooked, state: VisitStatus, *, confirmed: bool, names: Names
) -> VisitView:
    """One of the client's visits as the route answers it: local start, shown status,
    names and "3 of 8"."""
    return VisitView(
        **visit.model_dump(),
        local_start=visit.start.astimezone(ZoneInfo(visit.timezone)).isoformat(),
        status=shown_status(state, confirmed=confirmed),
        client_name=names.client(visit.client_id),
        therapist_name=names.therapist(visit.therapist_id),
        location_name=names.location(visit.location_id),
        room_name=room_name(visit.room),
        sequence_label=sequence_label(visit.sequence, visit.sessions_total),
    )


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RescheduleRequest(_Body):
    start: AwareDatetime | None = Field(
        default=None,
        description="the new start; omitted: the next slot that keeps the cadence and the gap",
    )


class CancelRequest(_Body):
    by: CancelledBy
    reason: str | None = Field(default=None, max_length=500)


class CompleteRequest(_Body):
    pain_before: int = Field(ge=0, le=10, description="pain carried into the visit, 0-10")
    pain_after: int = Field(ge=0, le=10, description="pain right after the visit, 0-10")
    pressure_tolerance: int | None = Field(default=None, ge=0, le=10)
    techniques: list[str] = Field(default_factory=list, max_length=30)
    trigger_points: list[TriggerPointOutcome] = Field(default_factory=list, max_length=50)
    notes: str | None = Field(default=None, max_length=4000)


class CommandResult(BaseModel):
    """The event the command published (or published the first time it was asked)."""

    event_type: str
    data: dict[str, object]


@router.get(
    "/clients/{client_id}/visits",
    response_model=ClientVisits,
    responses={200: example_answer(docs.CLIENT_VISITS_EXAMPLE), **errors(401, 404, 429)},
)
async def client_visits(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> ClientVisits:
    """The client's visits at the locations the key reaches, in start order, with local
    start times, status (cancelled ones too), names and "3 of 8"; a client id retired
    by a merge answers for the survivor. Courses retired after their retention period
    are listed apart (``retired_courses``), their visits no longer."""
    runtime = runtime_of(request)
    store = CalendarStore(runtime.redis, runtime.keys)
    survivor = await store.aliases.resolve(client_id)
    found = await store.client_visits(survivor)
    visits = [(v, state) for v, state in found if principal.reaches(v.location_id)]
    retired = [
        course
        for course in await Retirement(runtime.redis, runtime.keys).of_client(survivor)
        if principal.reaches(course.location_id)
    ]
    if not visits and not retired:  # one record in scope never opens the others
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    confirmed = await commands.confirmed_now(store, visits)
    names = await view_names(runtime, [survivor, *(v.client_id for v, _ in visits)])
    return ClientVisits(
        client_id=survivor,
        client_name=names.client(survivor),
        visits=[
            visit_view(v, state, confirmed=v.visit_id in confirmed, names=names)
            for v, state in visits
            # a released visit was a waitlist offer that closed: never the client's visit
            if state != "released"
        ],
        retired_courses=[
            RetiredCourseView(
                plan_id=course.plan_id,
                location_id=course.location_id,
                ended_at=course.ended_at,
                outcome=course.outcome,
                retained_until=course.retained_until(
                    runtime.chain.keep_finished_courses(course.location_id)
                ),
            )
            for course in retired
        ],
    )


def _answer(done: commands.Done, response: Response) -> CommandResult:
    response.status_code = status.HTTP_200_OK if done.replayed else status.HTTP_202_ACCEPTED
    return CommandResult(event_type=done.event.event_type, data=done.event.to_data())


def _command(
    path: str, *, answer: dict[str, Any] | None = None, body: dict[str, Any] | None = None
) -> Callable[[Route], Route]:
    """A command on one visit: 202 with its event, 200 when it repeats the first; the
    document shows ``body`` and its ``answer`` as examples."""
    return router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=CommandResult,
        responses={
            200: {"model": CommandResult, "description": "a repeat: the first request's result"},
            **({202: example_answer(answer)} if answer is not None else {}),
            **errors(401, 403, 404, 409, 413, 422, 429, 503),
        },
        openapi_extra=example_body(body) if body is not None else None,
    )


@router.post(
    "/visits/{visit_id}/confirm",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandResult,
    responses={
        200: {"model": CommandResult, "description": "a repeat: the first confirmation"},
        **errors(401, 403, 404, 409, 410, 429, 503),
    },
    openapi_extra=KEY_OR_LINK,
)
async def confirm(
    visit_id: str,
    request: Request,
    response: Response,
    sig: Annotated[str | None, Query(description="signature of a link from a message")] = None,
) -> CommandResult:
    """Confirm the visit at its current start (``visit.confirmed``): with a front desk
    key (via ``staff``) or the signed link of a message (via ``link``; 410 once the
    visit is cancelled). Once per visit and start: a repeat answers the first
    confirmation; a visit moved since needs confirming again; one that was cancelled,
    took place or has started is a 409."""
    actor = await link_access.actor(request, sig, visit_id, roles=CHANGERS, acts=True)
    via: ConfirmedVia = "link" if actor.by_link else "staff"
    done = await commands.confirm(runtime_of(request), actor.principal, visit_id, via=via)
    return _answer(done, response)


@_command(
    "/visits/{visit_id}/reschedule", answer=docs.RESCHEDULED_EXAMPLE, body=docs.RESCHEDULE_REQUEST
)
async def reschedule(
    visit_id: str,
    body: RescheduleRequest,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> CommandResult:
    """Move a visit: to ``start``, or to the next slot that keeps the plan's cadence and
    the soreness gap. 409 with the reason when it cannot go there."""
    require_role(principal, *CHANGERS)
    runtime = runtime_of(request)
    done = await commands.reschedule(runtime, principal, visit_id, start=body.start)
    return _answer(done, response)


@_command("/visits/{visit_id}/cancel", answer=docs.CANCELLED_EXAMPLE, body=docs.CANCEL_REQUEST)
async def cancel(
    visit_id: str,
    body: CancelRequest,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> CommandResult:
    """Cancel a visit; a client's cancel inside the policy's window is ``late``."""
    require_role(principal, *CHANGERS)
    runtime = runtime_of(request)
    done = await commands.cancel(runtime, principal, visit_id, by=body.by, reason=body.reason)
    return _answer(done, response)


@_command("/visits/{visit_id}/no-show")
async def no_show(
    visit_id: str, principal: CurrentPrincipal, request: Request, response: Response
) -> CommandResult:
    """Record that the client did not come (only once the visit has started)."""
    require_role(principal, *CHANGERS)
    done = await commands.no_show(runtime_of(request), principal, visit_id)
    return _answer(done, response)


@_command("/visits/{visit_id}/complete", answer=docs.COMPLETED_EXAMPLE, body=docs.COMPLETE_REQUEST)
async def complete(
    visit_id: str,
    body: CompleteRequest,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> CommandResult:
    """Complete a visit with the outcome the planner measures progress by; only once
    it has started on the shared clock, and only by its therapist (or admin/service)."""
    require_role(principal, *COMPLETERS)
    outcome = commands.Outcome(
        **body.model_dump(exclude={"trigger_points"}), trigger_points=body.trigger_points
    )
    done = await commands.complete(runtime_of(request), principal, visit_id, outcome)
    return _answer(done, response)
