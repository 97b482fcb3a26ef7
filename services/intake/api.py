"""HTTP routes of the intake service."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from services.intake.clients import resolve_client_id
from services.intake.screening import screen
from shared.auth import CurrentPrincipal, require_role
from shared.codec import wrap
from shared.envelope import Trace, derived_id
from shared.events.intake import ClientRecord, IntakeDocument, IntakeSubmitted, Screening
from shared.kafka import Outgoing, PublishError
from shared.routes import runtime_of
from shared.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["intake"])
IDEMPOTENCY_TTL_S = 7 * 86_400


class IntakeAccepted(BaseModel):
    intake_id: str
    client_id: str
    screening: Screening


@router.post(
    "/intakes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeAccepted,
    responses={503: {"description": "the broker did not acknowledge; nothing was accepted"}},
)
async def submit_intake(
    document: IntakeDocument,
    principal: CurrentPrincipal,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> IntakeAccepted:
    """Submit a whole intake; 202 once ``intake.submitted`` is durably on the broker."""
    require_role(principal, "frontdesk", "therapist", "admin", "service")
    runtime = runtime_of(request)
    if not runtime.chain.has_location(document.location_id):
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "location_id"),
                    "msg": "unknown location",
                    "type": "value_error",
                    "input": document.location_id,
                }
            ]
        )
    if not principal.reaches(document.location_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "location outside this key's scope")

    replay_key = None
    if idempotency_key:
        fingerprint = hashlib.sha256(document.model_dump_json().encode()).hexdigest()
        replay_key = runtime.keys("idempotency", principal.name or principal.role, idempotency_key)
        stored = await runtime.redis.get(replay_key)
        if stored:
            previous = json.loads(stored)
            if previous["fingerprint"] != fingerprint:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, "Idempotency-Key reused with a different intake"
                )
            return IntakeAccepted.model_validate(previous["response"])

    accepted = await _accept(runtime, document, intake_id=str(uuid.uuid4()))
    if replay_key:
        record = {"fingerprint": fingerprint, "response": accepted.model_dump(mode="json")}
        await runtime.redis.set(replay_key, json.dumps(record), ex=IDEMPOTENCY_TTL_S)
    return accepted


async def _accept(runtime: Runtime, document: IntakeDocument, *, intake_id: str) -> IntakeAccepted:
    now = runtime.clock.now()
    location = runtime.chain.location(document.location_id)
    client_id = await resolve_client_id(
        runtime.redis, runtime.keys, chain_id=runtime.chain.chain.id, client=document.client
    )
    screening = screen(document, today=now.astimezone(location.zone).date())
    event = IntakeSubmitted(
        intake_id=intake_id,
        client=ClientRecord(client_id=client_id, **document.client.model_dump()),
        location_id=document.location_id,
        complaints=document.complaints,
        health=document.health,
        goals=document.goals,
        preferences=document.preferences,
        screening=screening,
        submitted_at=now,
    )
    envelope = wrap(
        event,
        event_id=derived_id("intake.submitted", intake_id),
        service=runtime.service,
        subject=client_id,
        trace=Trace(
            chainid=runtime.chain.chain.id, correlationid=intake_id, locationid=document.location_id
        ),
        time=now,
    )
    try:
        await runtime.publisher.publish([Outgoing(key=client_id, envelope=envelope)])
    except PublishError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the intake could not be handed to the event broker; nothing was accepted, "
            "please retry",
            headers={"Retry-After": "5"},
        ) from exc
    return IntakeAccepted(intake_id=intake_id, client_id=client_id, screening=screening)
