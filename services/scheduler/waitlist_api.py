"""HTTP routes of the waitlist: a location's waiting plans and open offers, and
what a client does with an offer. The offer routes accept the signed link of
the offer message (``?sig=``, names ``"offer", offer_id``) instead of a key, so
the client can answer from the message itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field

from services.scheduler import offer_commands
from services.scheduler.api import CHANGERS
from services.scheduler.backfill import OfferRecord, OfferState, WaitingEntry, load_offer
from services.scheduler.backfill import plan_offer_record as _plan_offer
from services.scheduler.calendar_api import may_open, reaches
from services.scheduler.calendar_view import Names, room_name, sequence_label
from services.scheduler.client_names import view_names
from services.scheduler.store import CalendarStore
from shared import links
from shared.auth import CurrentPrincipal, require_role
from shared.errors import errors
from shared.openapi import KEY_OR_LINK
from shared.routes import runtime_of, visible

router = APIRouter(prefix="/v1", tags=["waitlist"])

Sig = Annotated[str | None, Query(description="signature of the offer message's link")]


class OfferView(BaseModel):
    offer_id: str
    state: OfferState
    visit_id: str
    plan_id: str
    client_id: str
    location_id: str
    therapist_id: str
    room: int
    start: AwareDatetime
    end: AwareDatetime
    local_start: str
    timezone: str
    sequence: int
    sessions_total: int
    hold_until: AwareDatetime
    closed_at: AwareDatetime | None = None
    booked: list[str] = []  # visit ids booked on acceptance, the offered one first
    client_name: str | None = Field(
        default=None, description="the client's name; null when the scheduler does not know it"
    )
    therapist_name: str | None = None
    location_name: str | None = None
    room_name: str = Field(examples=["Room 2"])
    sequence_label: str = Field(examples=["3 of 8"], description="sequence of sessions_total")


# accept and decline answer 200 with the offer when they repeat the first answer
REPEAT: dict[str, Any] = {"model": OfferView, "description": "a repeat of the first answer"}


class WaitingPlan(BaseModel):
    plan_id: str
    plan_version: int
    client_id: str
    sequence: int
    sessions_total: int
    since: AwareDatetime
    open_offer: str | None = None
    client_name: str | None = Field(
        default=None, description="the client's name; null when the scheduler does not know it"
    )
    sequence_label: str = Field(
        examples=["3 of 8"], description="the first waiting session: sequence of sessions_total"
    )
    reason: str | None = Field(
        default=None, description="why the first waiting session could not be placed (a code)"
    )
    detail: str | None = Field(default=None, description="the reason in words")
    cadence_note: str | None = Field(
        default=None,
        description="when the sessions booked before it already left the plan's cadence",
    )
    offer: OfferView | None = Field(default=None, description="the open offer, if any")


class LocationWaitlist(BaseModel):
    location_id: str
    location_name: str | None = None
    waiting: list[WaitingPlan]


def offer_view(record: OfferRecord, booked: list[str], names: Names) -> OfferView:
    """An offer as its routes answer it, with the names beside its ids."""
    o = record.offer
    local = o.start.astimezone(ZoneInfo(o.timezone))
    return OfferView(
        offer_id=o.offer_id,
        state=record.state,
        visit_id=o.visit_id,
        plan_id=o.plan_id,
        client_id=o.client_id,
        client_name=names.client(o.client_id),
        location_id=o.location_id,
        location_name=names.location(o.location_id),
        therapist_id=o.therapist_id,
        therapist_name=names.therapist(o.therapist_id),
        room=o.room,
        room_name=room_name(o.room),
        start=o.start,
        end=o.end,
        local_start=local.isoformat(),
        timezone=o.timezone,
        sequence=o.sequence,
        sessions_total=o.sessions_total,
        sequence_label=sequence_label(o.sequence, o.sessions_total),
        hold_until=o.hold_until,
        closed_at=record.closed_at,
        booked=booked,
    )


def waiting_plan(entry: WaitingEntry, offer: OfferRecord | None, names: Names) -> WaitingPlan:
    """A waiting plan on the location's waitlist, with why it waits and its open offer
    (``offer``, if open)."""
    open_offer = offer if offer is not None and offer.state == "open" else None
    return WaitingPlan(
        **entry.model_dump(exclude={"location_id"}),
        client_name=names.client(entry.client_id),
        sequence_label=sequence_label(entry.sequence, entry.sessions_total),
        open_offer=open_offer.offer.offer_id if open_offer else None,
        offer=offer_view(open_offer, [], names) if open_offer else None,
    )


async def _view(request: Request, record: OfferRecord, booked: list[str]) -> OfferView:
    names = await view_names(runtime_of(request), [record.offer.client_id])
    return offer_view(record, booked, names)


async def _reach(
    request: Request, sig: str | None, offer_id: str, *, acts: bool = False
) -> Callable[[str], bool]:
    """Who may act on the offer: its signed link (not once the offered visit is
    cancelled, when ``acts``: 410), or a key of a role that changes visits, which is
    not refused."""
    locations = await may_open(request, sig, "offer", offer_id, roles=CHANGERS)
    if acts and locations is None:
        runtime = runtime_of(request)
        store = CalendarStore(runtime.redis, runtime.keys)
        record = await load_offer(store, offer_id)
        found = await store.visit(record.offer.visit_id) if record is not None else None
        if found is not None and not links.may_act(found[1]):
            raise HTTPException(
                status.HTTP_410_GONE, "the visit was cancelled; this link no longer acts"
            )
    return lambda location_id: reaches(locations, location_id)


@router.get(
    "/waitlist-offers/{offer_id}",
    response_model=OfferView,
    responses=errors(401, 403, 404, 429),
    openapi_extra=KEY_OR_LINK,
)
async def get_offer(offer_id: str, request: Request, sig: Sig = None) -> OfferView:
    """An offer of a freed slot and where it stands."""
    runtime = runtime_of(request)
    store = CalendarStore(runtime.redis, runtime.keys)
    record = await offer_commands.offer_of(
        store, offer_id, reach=await _reach(request, sig, offer_id)
    )
    return await _view(request, record, [])


async def _answer(request: Request, answer: offer_commands.Answer, response: Response) -> OfferView:
    response.status_code = status.HTTP_200_OK if answer.replayed else status.HTTP_202_ACCEPTED
    return await _view(request, answer.record, [v.visit_id for v in answer.booked])


@router.post(
    "/waitlist-offers/{offer_id}/accept",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OfferView,
    responses={200: REPEAT, **errors(401, 403, 404, 409, 410, 429, 503)},
    openapi_extra=KEY_OR_LINK,
)
async def accept_offer(
    offer_id: str, request: Request, response: Response, sig: Sig = None
) -> OfferView:
    """Take the offered slot while the hold lasts: books the visit and the rest of the
    plan after it. 409 when the hold has lapsed or the offer closed."""
    reach = await _reach(request, sig, offer_id, acts=True)
    answer = await offer_commands.accept(runtime_of(request), offer_id, reach=reach)
    return await _answer(request, answer, response)


@router.post(
    "/waitlist-offers/{offer_id}/decline",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OfferView,
    responses={200: REPEAT, **errors(401, 403, 404, 409, 410, 429, 503)},
    openapi_extra=KEY_OR_LINK,
)
async def decline_offer(
    offer_id: str, request: Request, response: Response, sig: Sig = None
) -> OfferView:
    """Let the slot go to the next waiting client; the plan keeps its place."""
    reach = await _reach(request, sig, offer_id, acts=True)
    answer = await offer_commands.decline(runtime_of(request), offer_id, reach=reach)
    return await _answer(request, answer, response)


@router.get(
    "/locations/{location_id}/waitlist",
    response_model=LocationWaitlist,
    responses=errors(401, 403, 404, 429),
)
async def location_waitlist(
    location_id: str, principal: CurrentPrincipal, request: Request
) -> LocationWaitlist:
    """The plans waiting at a location, longest waiting first, with why each waits, the
    client's name and its open offer."""
    runtime = runtime_of(request)
    if not runtime.chain.has_location(location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, [location_id])
    require_role(principal, *CHANGERS)
    store = CalendarStore(runtime.redis, runtime.keys)
    found = await store.waiting(location_id)
    entries = sorted(
        (WaitingEntry.model_validate_json(raw) for raw in found.values()),
        key=lambda e: (e.since, e.plan_id),
    )
    names = await view_names(runtime, [e.client_id for e in entries])
    waiting = []
    for entry in entries:
        offer_id = await store.record(_plan_offer(entry.plan_id))
        record = await load_offer(store, offer_id) if offer_id else None
        waiting.append(waiting_plan(entry, record, names))
    return LocationWaitlist(
        location_id=location_id, location_name=names.location(location_id), waiting=waiting
    )
