"""Client lookup for staff, and the therapist's assessment."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel, Field

from services.intake.api import check_location
from services.intake.clients import ClientDirectory, ClientView
from services.intake.docs import errors
from services.intake.idempotency import Replay, fingerprint_of, reserved
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.envelope import Trace, derived_id
from shared.events.intake import AssessmentRecorded, ShortText, TriggerPoint
from shared.routes import publish_or_503, runtime_of, visible
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/clients", tags=["clients"])


class AssessmentInput(BaseModel):
    """What the therapist found (DOMAIN.md 3)."""

    model_config = {"extra": "forbid"}

    location_id: str = Field(min_length=1, description="where the assessment took place")
    posture_findings: list[ShortText] = Field(
        default_factory=list, max_length=20, examples=[["forward head posture"]]
    )
    range_of_motion_limits: list[ShortText] = Field(
        default_factory=list, max_length=20, examples=[["head rotation right limited to 45°"]]
    )
    trigger_points: list[TriggerPoint] = Field(default_factory=list, max_length=50)
    nerve_signs: list[ShortText] = Field(
        default_factory=list, max_length=20, examples=[["tingling into the right thumb"]]
    )
    notes: str | None = Field(default=None, max_length=4000)


class AssessmentAccepted(BaseModel):
    assessment_id: str


@router.get("/{client_id}", response_model=ClientView, responses=errors(401, 404, 422, 429))
async def read_client(client_id: str, principal: CurrentPrincipal, request: Request) -> ClientView:
    """A client in the key's locations: details, locations, intakes and assessments."""
    runtime = runtime_of(request)
    view = await _directory(runtime).view(client_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    visible(principal, view.locations)
    return view


@router.post(
    "/{client_id}/assessments",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AssessmentAccepted,
    responses=errors(401, 403, 404, 409, 413, 422, 429, 503),
)
async def record_assessment(
    client_id: str,
    assessment: AssessmentInput,
    principal: CurrentPrincipal,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AssessmentAccepted:
    """Record a therapist's assessment; 202 once ``assessment.recorded`` is on the broker."""
    require_role(principal, "therapist")
    runtime = runtime_of(request)
    directory = _directory(runtime)
    visible(principal, await directory.locations(client_id))
    check_location(runtime, principal, assessment.location_id, field=("body", "location_id"))
    if not idempotency_key:
        return await _record(runtime, principal, client_id, assessment, str(uuid.uuid4()))
    key = runtime.keys("idempotency", principal.key_id, "assessment", idempotency_key)
    assessment_id = derived_id("assessment", principal.key_id, idempotency_key)
    body = f"{client_id}\x1f{assessment.model_dump_json()}"
    try:
        async with reserved(runtime.redis, key, fingerprint_of(body)) as held:
            accepted = await _record(runtime, principal, client_id, assessment, assessment_id)
            await held.complete(accepted.model_dump(mode="json"))
    except Replay as replay:
        return AssessmentAccepted.model_validate(replay.response)
    return accepted


async def _record(
    runtime: Runtime,
    principal: Principal,
    client_id: str,
    assessment: AssessmentInput,
    assessment_id: str,
) -> AssessmentAccepted:
    if principal.therapist_id is None:  # the chain config guarantees one for therapist keys
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key names no therapist")
    now = runtime.clock.now()
    event = AssessmentRecorded(
        assessment_id=assessment_id,
        client_id=client_id,
        therapist_id=principal.therapist_id,
        recorded_at=now,
        **assessment.model_dump(),
    )
    outgoing = runtime.outgoing(
        event,
        key=client_id,
        subject=client_id,
        event_id=derived_id("assessment.recorded", assessment_id),
        trace=Trace(
            chainid=runtime.chain.chain.id,
            correlationid=assessment_id,
            locationid=assessment.location_id,
        ),
        time=now,
    )
    await publish_or_503(
        runtime,
        [outgoing],
        "the event broker did not confirm the assessment, so it was not recorded; retry",
    )
    await _directory(runtime).record_assessment(event)
    return AssessmentAccepted(assessment_id=assessment_id)


def _directory(runtime: Runtime) -> ClientDirectory:
    return ClientDirectory(runtime.redis, runtime.keys, chain_id=runtime.chain.chain.id)
