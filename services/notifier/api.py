"""HTTP routes of the notifier: a client's notification log and contact
preferences for the front desk; the SMS provider's inbound webhook (STOP,
START, HELP, check-in scores); and the check-in reply page a client opens from
an e-mail (signed link, no key), in the client's language."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.notifier import checkin_pages
from services.notifier.compose import visit_time
from services.notifier.courses import HISTORY, Courses
from services.notifier.delivery import Contact, with_preferences
from services.notifier.docs import NOTIFICATIONS_EXAMPLE
from services.notifier.messages import Clinic
from services.notifier.replies import record_reply
from services.notifier.sms_inbound import InboundSms, valid_twilio_signature
from services.notifier.sms_webhook import answer_text
from services.notifier.store import NotificationStore
from shared import links
from shared.aliases import ClientAliases
from shared.auth import CurrentPrincipal, require_role
from shared.chain import QuietRange
from shared.errors import errors
from shared.openapi import example_answer
from shared.retention import RetiredCourse
from shared.routes import in_scope, runtime_of
from shared.vocabulary import Channel, NotificationKind, Role

router = APIRouter(prefix="/v1", tags=["notifications"])

EDITORS: tuple[Role, ...] = ("frontdesk", "admin", "service")


class NotificationView(BaseModel):
    notification_id: str
    kind: NotificationKind
    channel: Channel
    status: str = Field(
        description="scheduled, sending (an attempt under way), sent, failed, cancelled "
        "or suppressed"
    )
    visit_id: str | None = None
    due_at: AwareDatetime
    offset: str | None = None
    moved_for_quiet_hours: bool = False
    attempts: int = 0
    sent_at: AwareDatetime | None = None
    reason: str | None = Field(
        default=None, description="why it failed, was cancelled or suppressed"
    )
    planned_due_at: AwareDatetime | None = Field(
        default=None, description="only on a reminder sent late: when it was due"
    )
    provider_ref: str | None = Field(
        default=None,
        description="the provider's own id for a sent message, when it gave one "
        "(an SMS's message SID, an e-mail's Message-ID)",
    )


class RetiredCourseView(BaseModel):
    """A finished course whose notifications left the notifier's state when its
    retention period (``keep_finished_courses``) ended: they live on in ``history``."""

    plan_id: str
    ended_at: AwareDatetime
    outcome: str = Field(description="how the course ended: a plan.completed outcome or declined")
    retained_until: AwareDatetime = Field(
        description="when its notifications left (ended_at + keep_finished_courses)"
    )
    history: str = Field(default=HISTORY, description="the topic that keeps them")


class NotificationLog(BaseModel):
    client_id: str
    notifications: list[NotificationView]
    retired_courses: list[RetiredCourseView] = Field(
        default_factory=list,
        description="courses finished longer ago than the retention period: their "
        "notifications are on the topic named, no longer listed here",
    )


class ContactPreferences(BaseModel):
    """Per-channel opt-in, and the client's own quiet hours (the location's when
    absent). Opting in to SMS again undoes an earlier STOP."""

    model_config = ConfigDict(extra="forbid")

    email: bool
    sms: bool
    quiet_hours: QuietRange | None = None


class PreferencesView(ContactPreferences):
    client_id: str
    sms_stopped: bool


def _store(request: Request) -> NotificationStore:
    runtime = runtime_of(request)
    return NotificationStore(runtime.redis, runtime.keys)


def _aliases(request: Request) -> ClientAliases:
    runtime = runtime_of(request)
    return ClientAliases(runtime.redis, runtime.keys)


@router.get(
    "/clients/{client_id}/notifications",
    response_model=NotificationLog,
    responses={200: example_answer(NOTIFICATIONS_EXAMPLE), **errors(401, 404, 429)},
)
async def client_notifications(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> NotificationLog:
    """The client's notifications sent from the locations the key reaches, with status,
    in due order; a client id retired by a merge answers for the survivor. A course
    finished longer ago than the retention period is listed in ``retired_courses``
    (to a key reaching the client's location), its notifications on the topic."""
    survivor, known_as = await _aliases(request).known_as(client_id)
    store = _store(request)
    records = await store.for_client(*known_as)
    visible = [r for r in records if principal.reaches(str(r["location_id"]))]
    retired = await Courses(runtime_of(request)).of_client(known_as)
    contact = await store.contact(survivor) if retired else None
    home = contact.location_id if contact is not None else None
    courses = (
        [_retired_view(request, c, home) for c in retired]
        if home is not None and principal.reaches(home)
        else []
    )
    if not visible and not courses:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return NotificationLog(
        client_id=survivor,
        notifications=[NotificationView.model_validate(_view(r)) for r in visible],
        retired_courses=courses,
    )


def _retired_view(request: Request, course: RetiredCourse, location_id: str) -> RetiredCourseView:
    keep = Courses(runtime_of(request)).keep(location_id)
    return RetiredCourseView(
        plan_id=course.plan_id,
        ended_at=course.ended_at,
        outcome=course.outcome,
        retained_until=course.retained_until(keep),
    )


def _view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in NotificationView.model_fields}


async def _contact(request: Request, principal: CurrentPrincipal, client_id: str) -> Contact:
    """The client's contact (the survivor's, for a retired id), if the key reaches the
    location it was recorded at."""
    contact = await _store(request).contact(await _aliases(request).resolve(client_id))
    if contact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    [shown] = in_scope(principal, [contact], lambda c: c.location_id)
    return shown


def _preferences(contact: Contact) -> PreferencesView:
    return PreferencesView(
        client_id=contact.client_id,
        email=contact.consent.email,
        sms=contact.consent.sms,
        quiet_hours=contact.quiet_hours,
        sms_stopped=contact.sms_stopped,
    )


@router.get(
    "/clients/{client_id}/contact-preferences",
    response_model=PreferencesView,
    responses=errors(401, 404, 429),
)
async def get_contact_preferences(
    client_id: str, principal: CurrentPrincipal, request: Request
) -> PreferencesView:
    return _preferences(await _contact(request, principal, client_id))


@router.put(
    "/clients/{client_id}/contact-preferences",
    response_model=PreferencesView,
    responses=errors(401, 403, 404, 422, 429),
)
async def put_contact_preferences(
    client_id: str, body: ContactPreferences, principal: CurrentPrincipal, request: Request
) -> PreferencesView:
    """Replace the client's channel opt-ins and quiet hours; honoured from the next
    message on, including those already scheduled."""
    require_role(principal, *EDITORS)
    contact = await _contact(request, principal, client_id)
    updated = with_preferences(
        contact, email=body.email, sms=body.sms, quiet_hours=body.quiet_hours
    )
    await _store(request).save_contact(updated)
    return _preferences(updated)


# --- inbound SMS --------------------------------------------------------------------------

TWIML = "application/xml"


def _twiml(text: str | None) -> Response:
    body = f"<Message>{html.escape(text)}</Message>" if text else ""
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', media_type=TWIML
    )


# the form is read by hand (its signature covers every field as posted), so it is declared
INBOUND_FORM: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": True,
            "description": "the provider's signature of the URL and the form (403 otherwise)",
            "schema": {"type": "string"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": InboundSms.model_json_schema(by_alias=True)
            }
        },
    },
}


@router.post(
    "/sms/inbound",
    response_class=Response,
    responses={200: {"content": {TWIML: {}}}, **errors(400, 403, 413, 422, 503)},
    openapi_extra=INBOUND_FORM,
)
async def sms_inbound(request: Request) -> Response:
    """The SMS provider's webhook for messages from clients (Twilio's form post,
    signed with the account's auth token): STOP stops every SMS at once, START
    undoes it, HELP answers who we are, Y or C confirms the next visit, a number
    0-10 answers the last check-in, and any other text is kept for the front desk
    (services/notifier/sms_webhook.py). Each publishes ``reply.received`` once."""
    runtime = runtime_of(request)
    settings = runtime.base.settings
    token = getattr(settings, "sms_auth_token", None)
    url = getattr(settings, "sms_inbound_url", None)
    try:
        form = (await request.body()).decode()
    except UnicodeDecodeError as exc:  # the provider posts UTF-8; anything else is not it
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the form is not UTF-8") from exc
    pairs = parse_qsl(form, keep_blank_values=True)
    params = dict(pairs)
    signature = request.headers.get("X-Twilio-Signature", "")
    if (
        token is None
        or not url
        or not valid_twilio_signature(token.get_secret_value(), url, pairs, signature)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "bad signature")
    try:
        sms = InboundSms.from_form(params)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc
    return _twiml(await answer_text(runtime, sms))


# --- the check-in reply page --------------------------------------------------------------


def _check_signature(request: Request, notification_id: str, sig: str) -> None:
    runtime = runtime_of(request)
    secret = runtime.base.settings.link_secret.get_secret_value()
    if not links.verify(secret, sig, "checkin", notification_id, now=runtime.clock.now()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad or missing signature")


def _clinic_of(request: Request, record: dict[str, Any]) -> Clinic:
    chain = runtime_of(request).chain
    location = chain.location(record["location_id"])
    return Clinic(
        chain_name=chain.chain.name,
        location_name=location.name,
        address=location.address,
        phone=location.phone,
        timezone=location.timezone,
    )


async def _checkin_and_contact(
    request: Request, notification_id: str
) -> tuple[dict[str, Any], Contact]:
    """The check-in and its client's contact (the survivor's, after a merge)."""
    store = _store(request)
    record = await store.get(notification_id)
    if record is None or record["kind"] != "checkin":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    contact = await store.contact(await _aliases(request).resolve(record["client_id"]))
    if contact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return record, contact


def _html(page: str, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(page, status_code=status_code, media_type="text/html")


@router.get(
    "/checkins/{notification_id}",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, **errors(401, 404, 422, 503)},
)
async def checkin_page(
    notification_id: str, request: Request, sig: Annotated[str, Query()]
) -> Response:
    """The page a check-in e-mail links to, in the client's language: the visit's
    local time and location, and eleven buttons, 0 to 10, each a form POST (no
    JavaScript). Opening it records nothing (mail scanners open links); pressing a
    button does (services/notifier/checkin_pages.py)."""
    _check_signature(request, notification_id, sig)
    record, contact = await _checkin_and_contact(request, notification_id)
    page = checkin_pages.question_page(
        contact.language,
        clinic=_clinic_of(request, record),
        visit_start=visit_time(record.get("context") or {}),
        action=f"/v1/checkins/{notification_id}/reply?sig={sig}",
    )
    return _html(page)


class CheckinReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pain: int = Field(ge=0, le=10)


class CheckinAnswer(BaseModel):
    notification_id: str
    pain: int
    replied_at: datetime


REPLY_SCHEMA: dict[str, Any] = CheckinReply.model_json_schema()
REPLY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": REPLY_SCHEMA, "example": {"pain": 3}},
            "application/x-www-form-urlencoded": {"schema": REPLY_SCHEMA},
        },
    }
}
ANSWERED_PAGE: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}


@router.post(
    "/checkins/{notification_id}/reply",
    response_model=CheckinAnswer,
    responses={
        200: {
            "content": {"text/html": {}},
            "description": "the answer recorded: JSON to a JSON body, a small page to the form",
        },
        **errors(401, 404, 409, 413, 422, 503),
        409: {**errors(409)[409], "content": ANSWERED_PAGE},
    },
    openapi_extra=REPLY_BODY,
)
async def checkin_reply(
    notification_id: str, request: Request, sig: Annotated[str, Query()]
) -> CheckinAnswer | Response:
    """Record the pain score (JSON ``{"pain": n}`` or the page's form). The first
    answer counts; the same answer again is accepted, another is a 409. JSON is
    answered in JSON; the page's form with a small page in the client's language."""
    _check_signature(request, notification_id, sig)
    runtime = runtime_of(request)
    record, contact = await _checkin_and_contact(request, notification_id)
    raw = await request.body()
    as_json = request.headers.get("content-type", "").startswith("application/json")
    try:
        if as_json:
            reply = CheckinReply.model_validate_json(raw)
        else:
            reply = CheckinReply.model_validate(dict(parse_qsl(raw.decode())))
    except UnicodeDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "the form is not UTF-8", "type": "value_error"}]
        ) from exc
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc
    answer = await record_reply(
        runtime, contact, pain=reply.pain, channel="email", notification=record
    )
    if answer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    clinic = _clinic_of(request, record)
    if answer.pain != reply.pain:
        if not as_json:
            page = checkin_pages.answered_page(contact.language, clinic=clinic, pain=answer.pain)
            return _html(page, status.HTTP_409_CONFLICT)
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"this check-in was answered already ({answer.pain}/10)"
        )
    if not as_json:
        return _html(checkin_pages.thanks_page(contact.language, clinic=clinic, pain=answer.pain))
    return CheckinAnswer(
        notification_id=notification_id, pain=answer.pain, replied_at=answer.replied_at
    )
