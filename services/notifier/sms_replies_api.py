"""The front desk's view of the texts clients send that are no keyword: the ones
nobody has answered yet, per location, and marking one answered (who, when, a note).
Front desk and admin keys, for the locations they reach; another location's texts
are not found (404), as everywhere."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.notifier.sms_replies import ReplyStatus, SmsReplies, SmsReply
from shared.auth import CurrentPrincipal, require_role
from shared.errors import errors
from shared.routes import runtime_of, visible
from shared.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["sms replies"])

READERS: tuple[Role, ...] = ("frontdesk", "admin")


class SmsReplyView(BaseModel):
    reply_id: str
    client_id: str
    location_id: str
    received_at: AwareDatetime
    text: str = Field(description="what the client wrote")
    status: ReplyStatus
    answered_at: AwareDatetime | None = None
    answered_by: str | None = Field(default=None, description="the name of the key that did")
    answered_by_key: str | None = Field(default=None, description="a digest naming that key")
    note: str | None = None


class SmsReplyList(BaseModel):
    location_id: str
    status: ReplyStatus
    count: int = Field(description="how many texts of the location are in this status")
    replies: list[SmsReplyView] = Field(
        description="unanswered: the longest waiting first; answered: the latest first"
    )


class Answered(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000, description="what was done")


def _view(reply: SmsReply) -> SmsReplyView:
    return SmsReplyView(
        reply_id=reply.reply_id,
        client_id=reply.client_id,
        location_id=reply.location_id,
        received_at=reply.received_at,
        text=reply.text or "",
        status=reply.status,
        answered_at=reply.answered_at,
        answered_by=reply.answered_by,
        answered_by_key=reply.answered_by_key,
        note=reply.note,
    )


def _replies(request: Request) -> SmsReplies:
    runtime = runtime_of(request)
    return SmsReplies(runtime.redis, runtime.keys)


@router.get(
    "/locations/{location_id}/sms-replies",
    response_model=SmsReplyList,
    responses=errors(401, 403, 404, 422, 429),
)
async def location_sms_replies(
    location_id: str,
    principal: CurrentPrincipal,
    request: Request,
    status_: Annotated[Literal["unanswered", "answered"], Query(alias="status")] = "unanswered",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SmsReplyList:
    """The texts clients of the location sent that were no keyword, unanswered (the
    default) or answered."""
    if not runtime_of(request).chain.has_location(location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, [location_id])
    require_role(principal, *READERS)
    count, found = await _replies(request).listed(location_id, status_, limit=limit)
    return SmsReplyList(
        location_id=location_id,
        status=status_,
        count=count,
        replies=[_view(r) for r in found],
    )


@router.post(
    "/sms-replies/{reply_id}/answered",
    response_model=SmsReplyView,
    responses=errors(401, 403, 404, 422, 429),
)
async def mark_answered(
    reply_id: str,
    principal: CurrentPrincipal,
    request: Request,
    body: Answered | None = None,
) -> SmsReplyView:
    """Mark a client's text answered, with who and when (and the note, if any). Once: a
    text already answered keeps its first answer, which is returned."""
    replies = _replies(request)
    found = await replies.get(reply_id)
    if found is None or not found.for_desk:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, [found.location_id])
    require_role(principal, *READERS)
    answered = await replies.answer(
        reply_id,
        at=runtime_of(request).clock.now(),
        by=principal.name,
        by_key=principal.key_id,
        note=body.note if body else None,
    )
    if answered is None:  # gone since it was read
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return _view(answered)
