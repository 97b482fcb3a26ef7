"""HTTP routes of the pages a client opens from a message: a visit's page (confirm,
cancel, move to a proposed time) and a waitlist offer's page (accept, decline).

Both open from the message's signed link (``?sig=``: ``"visit", visit_id`` or
``"offer", offer_id``) or a staff key, in the language of ``?lang=`` (en or es;
anything else is English). A GET shows and changes nothing; each button is a form
POST to ``.../manage/<action>`` that runs the same command the JSON API runs
(``commands.py``, ``offer_commands.py``) and answers a small page in the language:
200 with what happened, 409 with the reason in plain words, 410 once the visit is
cancelled (its links no longer act). Errors before the record is found (401, 404,
422) are JSON, as everywhere in the API. A staff key opens a page to see what the
client sees; its buttons act from the link, which carries the signature (a form
post cannot carry a key). The pages themselves are ``pages.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from services.scheduler import commands, link_access, offer_commands, operations, pages
from services.scheduler.api import CHANGERS
from services.scheduler.backfill import OfferRecord
from services.scheduler.calendar_api import NOT_VISITS, may_open, reaches
from services.scheduler.confirmation import shown_status
from services.scheduler.directory_store import staffing_at
from services.scheduler.page_texts import PageTexts, texts_for
from services.scheduler.proposals import proposed_starts
from services.scheduler.store import CalendarStore, VisitStatus
from shared import links
from shared.errors import errors
from shared.events.visits import VisitBooked, VisitCancelled, VisitRescheduled
from shared.openapi import KEY_OR_LINK
from shared.routes import runtime_of
from shared.runtime import Runtime
from shared.vocabulary import ConfirmedVia, Role

router = APIRouter(prefix="/v1", tags=["pages"])
Route = TypeVar("Route", bound=Callable[..., Awaitable[Any]])

Sig = Annotated[str | None, Query(description="signature of the message's link")]
Lang = Annotated[
    str | None, Query(description="the client's language: en or es (default en; others: en)")
]
VIEWERS: tuple[Role, ...] = ("frontdesk", "therapist", "ops", "admin", "service")
PAGE: dict[str, Any] = {"content": {"text/html": {}}}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {**PAGE, "description": "what the button did"},
    409: {**PAGE, "description": "it could not be done: the reason in plain words"},
    410: {**PAGE, "description": "the visit was cancelled: its links no longer act"},
}
START_FORM: dict[str, Any] = {
    **KEY_OR_LINK,
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"start": {"type": "string", "format": "date-time"}},
                    "required": ["start"],
                }
            }
        },
    },
}


def _html(page: str, status_code: int = status.HTTP_200_OK) -> Response:
    # the page's one inline style is allowed by its hash; nothing else runs or loads
    return Response(
        page,
        status_code=status_code,
        media_type="text/html",
        headers={"content-security-policy": pages.POLICY},
    )


# --- the visit's page ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Opened:
    """A page opened: where, in which language, and what its links carry on."""

    place: pages.Place
    lang: str
    texts: PageTexts
    carried: str  # the query string the page's links and forms carry on

    def result(self, title: str, lines: Sequence[str], status_code: int = 200) -> Response:
        """The small page a button's POST answers, linking back to the page."""
        page = pages.result_page(
            title=title,
            lines=lines,
            place=self.place,
            texts=self.texts,
            lang=self.lang,
            back=f"../manage?{self.carried}",
        )
        return _html(page, status_code)


@dataclass(frozen=True, kw_only=True)
class _Visit(_Opened):
    """A visit opened from its page, with who opened it and in which language."""

    runtime: Runtime
    store: CalendarStore
    actor: link_access.Actor
    visit: VisitBooked
    state: VisitStatus

    def when(self, moment: datetime) -> str:
        return pages.when_text(moment, self.place, self.lang)


async def _open_visit(
    request: Request, visit_id: str, sig: str | None, lang: str | None, *, acts: bool
) -> _Visit:
    actor = await link_access.actor(
        request, sig, visit_id, roles=CHANGERS if acts else VIEWERS, acts=False
    )
    runtime = runtime_of(request)
    store = CalendarStore(runtime.redis, runtime.keys)
    found = await store.visit(visit_id)
    # an offered or released visit is a waitlist offer, not (yet) the client's visit
    if found is None or found[1] in NOT_VISITS or not actor.principal.reaches(found[0].location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    language, texts = texts_for(lang)
    visit, state = found
    return _Visit(
        runtime=runtime,
        store=store,
        actor=actor,
        visit=visit,
        state=state,
        place=_place(runtime, visit.location_id),
        lang=language,
        texts=texts,
        carried=pages.query(sig if actor.by_link else None, language),
    )


def _place(runtime: Runtime, location_id: str) -> pages.Place:
    location = runtime.chain.location(location_id)
    return pages.Place(
        chain_name=runtime.chain.chain.name,
        location_name=location.name,
        address=location.address,
        phone=location.phone,
        timezone=location.timezone,
    )


async def _visit_facts(opened: _Visit) -> pages.VisitFacts:
    runtime, store, visit, state = opened.runtime, opened.store, opened.visit, opened.state
    now = runtime.clock.now()
    policy = runtime.chain.policy_for(visit.location_id)
    confirmed = visit.visit_id in await commands.confirmed_now(store, [(visit, state)])
    proposals: list[datetime] = []
    if state == "booked" and now < visit.start:
        reads = await commands.move_reads(store, visit, policy=policy, now=now)
        proposals = proposed_starts(
            visit,
            plan_visits=reads.plan_visits,
            staffing=await staffing_at(runtime, visit.location_id),
            needs=reads.needs,
            policy=policy,
            held=reads.held,
            now=now,
        )
    return pages.VisitFacts(
        visit_id=visit.visit_id,
        place=opened.place,
        start=visit.start,
        status=shown_status(state, confirmed=confirmed),
        started=now >= visit.start,
        late_cancel=operations.is_late_cancel(visit, by="client", now=now, policy=policy),
        late_window=policy.late_cancel_window,
        proposals=proposals,
    )


@router.get(
    "/visits/{visit_id}/manage",
    response_class=Response,
    responses={200: PAGE, **errors(401, 403, 404, 429)},
    openapi_extra=KEY_OR_LINK,
)
async def visit_page(
    visit_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The visit's page: when (the location's local time) and where, its status, and
    forms that POST - confirm; cancel, saying first whether a cancel now counts as late;
    move to one of up to three proposed times. Opening it changes nothing."""
    opened = await _open_visit(request, visit_id, sig, lang, acts=False)
    page = pages.visit_page(
        await _visit_facts(opened), texts=opened.texts, lang=opened.lang, carried=opened.carried
    )
    return _html(page)


async def _acting(
    request: Request, visit_id: str, sig: str | None, lang: str | None
) -> _Visit | Response:
    """The visit a button acts on, or the 410 page once it is cancelled."""
    opened = await _open_visit(request, visit_id, sig, lang, acts=True)
    if not links.may_act(opened.state):
        return opened.result(opened.texts.refused_title, [opened.texts.gone_note], 410)
    return opened


def _refused(opened: _Visit, refused: commands.Refused) -> Response:
    return opened.result(opened.texts.refused_title, [opened.texts.refusal(refused.reason)], 409)


def _action(path: str, openapi_extra: dict[str, Any] = KEY_OR_LINK) -> Callable[[Route], Route]:
    """A button's form post: a page in the language, JSON for errors before the record."""
    return router.post(
        path,
        response_class=Response,
        responses={**ANSWERS, **errors(401, 403, 404, 413, 422, 429, 503)},
        openapi_extra=openapi_extra,
    )


@_action("/visits/{visit_id}/manage/confirm")
async def visit_page_confirm(
    visit_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The page's Confirm: the visit confirmed at its current start (via ``link``, or
    ``staff`` with a key)."""
    opened = await _acting(request, visit_id, sig, lang)
    if isinstance(opened, Response):
        return opened
    via: ConfirmedVia = "link" if opened.actor.by_link else "staff"
    try:
        await commands.confirm(opened.runtime, opened.actor.principal, visit_id, via=via)
    except commands.Refused as refused:
        return _refused(opened, refused)
    line = opened.texts.done_confirmed.format(when=opened.when(opened.visit.start))
    return opened.result(opened.texts.done_title, [line])


@_action("/visits/{visit_id}/manage/cancel")
async def visit_page_cancel(
    visit_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The page's Cancel: the client's cancel, late inside the policy's window."""
    opened = await _acting(request, visit_id, sig, lang)
    if isinstance(opened, Response):
        return opened
    try:
        done = await commands.cancel(
            opened.runtime, opened.actor.principal, visit_id, by="client", reason=None
        )
    except commands.Refused as refused:
        return _refused(opened, refused)
    texts = opened.texts
    late = isinstance(done.event, VisitCancelled) and done.event.late
    lines = [texts.done_cancelled.format(when=opened.when(opened.visit.start))]
    return opened.result(texts.done_title, [*lines, texts.done_cancelled_late if late else ""])


class _StartForm(BaseModel):
    model_config = ConfigDict(extra="ignore")  # only the pressed time matters

    start: AwareDatetime


async def _start_of(request: Request) -> datetime:
    """The ``start`` the pressed button posts (422 naming ``body.start`` otherwise)."""
    raw = await request.body()
    try:
        form = _StartForm.model_validate(dict(parse_qsl(raw.decode("utf-8"))))
    except UnicodeDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "the form is not UTF-8", "type": "value_error"}]
        ) from exc
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc
    return form.start


@_action("/visits/{visit_id}/manage/reschedule", openapi_extra=START_FORM)
async def visit_page_reschedule(
    visit_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The page's move: to the ``start`` of the button pressed, under every booking rule
    (``operations.reschedule``); a visit already there is answered as moved."""
    opened = await _acting(request, visit_id, sig, lang)
    if isinstance(opened, Response):
        return opened
    start = await _start_of(request)
    texts = opened.texts
    if start == opened.visit.start:  # pressed twice: it moved the first time
        return opened.result(texts.done_title, [texts.done_moved.format(when=opened.when(start))])
    try:
        done = await commands.reschedule(
            opened.runtime, opened.actor.principal, visit_id, start=start
        )
    except commands.Refused as refused:
        return _refused(opened, refused)
    moved = done.event.start if isinstance(done.event, VisitRescheduled) else start
    return opened.result(texts.done_title, [texts.done_moved.format(when=opened.when(moved))])


# --- the waitlist offer's page ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Offer(_Opened):
    """A waitlist offer opened from its page."""

    runtime: Runtime
    record: OfferRecord
    by_link: bool
    reach: offer_commands.Reach

    def state_now(self) -> str:
        """The offer's state, ``lapsed`` once its hold ended (before the round closes it)."""
        record, now = self.record, self.runtime.clock.now()
        held = now < record.offer.hold_until and now < record.offer.start
        return "lapsed" if record.state == "open" and not held else record.state


async def _open_offer(request: Request, offer_id: str, sig: str | None, lang: str | None) -> _Offer:
    locations = await may_open(request, sig, "offer", offer_id, roles=CHANGERS)

    def reach(location_id: str) -> bool:
        return reaches(locations, location_id)

    runtime = runtime_of(request)
    store = CalendarStore(runtime.redis, runtime.keys)
    record = await offer_commands.offer_of(store, offer_id, reach=reach)
    language, texts = texts_for(lang)
    return _Offer(
        runtime=runtime,
        record=record,
        by_link=locations is None,
        reach=reach,
        place=_place(runtime, record.offer.location_id),
        lang=language,
        texts=texts,
        carried=pages.query(sig if locations is None else None, language),
    )


@router.get(
    "/waitlist-offers/{offer_id}/manage",
    response_class=Response,
    responses={200: PAGE, **errors(401, 403, 404, 429)},
    openapi_extra=KEY_OR_LINK,
)
async def offer_page(
    offer_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The offer's page: the offered visit (local time, location) and until when it is
    held, with Accept and Decline buttons that POST while it is. Opening it changes
    nothing."""
    opened = await _open_offer(request, offer_id, sig, lang)
    offer = opened.record.offer
    facts = pages.OfferFacts(
        offer_id=offer.offer_id,
        place=opened.place,
        start=offer.start,
        hold_until=offer.hold_until,
        state=opened.state_now(),
    )
    return _html(
        pages.offer_page(facts, texts=opened.texts, lang=opened.lang, carried=opened.carried)
    )


# the links of offer messages sent before the page existed (and of a link template that
# still names {action}) open the page: a GET of an action would otherwise answer 405
for _action_named in ("accept", "decline"):
    router.add_api_route(
        f"/waitlist-offers/{{offer_id}}/{_action_named}",
        offer_page,
        methods=["GET"],
        response_class=Response,
        responses={200: PAGE, **errors(401, 403, 404, 429)},
        openapi_extra=KEY_OR_LINK,
        name=f"offer_page_from_{_action_named}_link",
        summary=f"The offer's page, from a link to {_action_named}",
        description="The offer's page, as from .../manage: opening it changes nothing; "
        "only its buttons act.",
    )


async def _offer_acting(
    request: Request, offer_id: str, sig: str | None, lang: str | None
) -> _Offer | Response:
    """The offer a button acts on, or the 410 page once its visit is cancelled."""
    opened = await _open_offer(request, offer_id, sig, lang)
    if opened.by_link:
        store = CalendarStore(opened.runtime.redis, opened.runtime.keys)
        found = await store.visit(opened.record.offer.visit_id)
        if found is not None and not links.may_act(found[1]):
            return opened.result(opened.texts.refused_title, [opened.texts.offer_gone], 410)
    return opened


async def _offer_refused(opened: _Offer, refused: HTTPException) -> Response:
    """A 409 of an offer's command, worded by what became of the offer."""
    if refused.status_code != status.HTTP_409_CONFLICT:
        raise refused
    store = CalendarStore(opened.runtime.redis, opened.runtime.keys)
    offer_id = opened.record.offer.offer_id
    record = await offer_commands.offer_of(store, offer_id, reach=opened.reach)
    state = replace(opened, record=record).state_now()
    texts = opened.texts
    line = texts.offer_states.get(state, texts.refusal("other"))
    return opened.result(texts.refused_title, [line], status.HTTP_409_CONFLICT)


@_action("/waitlist-offers/{offer_id}/manage/accept")
async def offer_page_accept(
    offer_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The page's Accept: books the offered visit and the rest of the plan after it."""
    opened = await _offer_acting(request, offer_id, sig, lang)
    if isinstance(opened, Response):
        return opened
    try:
        answer = await offer_commands.accept(opened.runtime, offer_id, reach=opened.reach)
    except HTTPException as refused:
        return await _offer_refused(opened, refused)
    texts, start = opened.texts, opened.record.offer.start
    lines = [texts.done_accepted.format(when=pages.when_text(start, opened.place, opened.lang))]
    if len(answer.booked) > 1:
        lines.append(texts.done_accepted_more)
    return opened.result(texts.done_title, lines)


@_action("/waitlist-offers/{offer_id}/manage/decline")
async def offer_page_decline(
    offer_id: str, request: Request, sig: Sig = None, lang: Lang = None
) -> Response:
    """The page's Decline: the slot goes to the next waiting client."""
    opened = await _offer_acting(request, offer_id, sig, lang)
    if isinstance(opened, Response):
        return opened
    try:
        await offer_commands.decline(opened.runtime, offer_id, reach=opened.reach)
    except HTTPException as refused:
        return await _offer_refused(opened, refused)
    return opened.result(opened.texts.done_title, [opened.texts.done_declined])
