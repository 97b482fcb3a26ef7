"""HTTP routes of the intake service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from services.intake.clients import resolve_client_id
from services.intake.idempotency import Replay, fingerprint_of, reserved
from services.intake.screening import screen
from shared.auth import CurrentPrincipal, require_role
from shared.envelope import Trace, derived_id
from shared.events.intake import ClientRecord, IntakeDocument, IntakeSubmitted, Screening
from shared.kafka import PublishError
from shared.routes import runtime_of
from shared.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["intake"])


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

    if not idempotency_key:
        return await _accept(runtime, document, intake_id=str(uuid.uuid4()))
    key = runtime.keys("idempotency", principal.key_id, idempotency_key)
    try:
        async with reserved(runtime.redis, key, fingerprint_of(document.model_dump_json())) as held:
            accepted = await _accept(runtime, document, intake_id=str(uuid.uuid4()))
            await held.complete(accepted.model_dump(mode="json"))
    except Replay as replay:
        return IntakeAccepted.model_validate(replay.response)
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
    outgoing = runtime.outgoing(
        event,
        key=client_id,
        subject=client_id,
        event_id=derived_id("intake.submitted", intake_id),
        trace=Trace(
            chainid=runtime.chain.chain.id, correlationid=intake_id, locationid=document.location_id
        ),
        time=now,
    )
    try:
        await runtime.publisher.publish([outgoing])
    except PublishError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the intake could not be handed to the event broker; nothing was accepted, "
            "please retry",
            headers={"Retry-After": "5"},
        ) from exc
    return IntakeAccepted(intake_id=intake_id, client_id=client_id, screening=screening)
