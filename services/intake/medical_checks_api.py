"""The doctor's check a red flag asks for (DOMAIN.md 1), recorded by the therapist.

A plan opened by a red flag books its assessment visit only; the rest of the course
waits for this record (``medical_check.recorded``): cleared or overridden, the planner
books the rest; not cleared, the course ends referred. Stored with its event in the
intake's outbox, like an assessment, so an accepted record is never lost."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from services.intake.api import check_location
from services.intake.clients import ClientDirectory
from services.intake.docs import errors
from services.intake.idempotency import Replay, fingerprint_of, reserved
from services.intake.submission import intake_outbox
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.envelope import Trace, derived_id
from shared.events.intake import MedicalCheckRecorded
from shared.routes import runtime_of, visible
from shared.runtime import Runtime
from shared.vocabulary import MedicalCheckOutcome

router = APIRouter(prefix="/v1/clients", tags=["clients"])


class MedicalCheckInput(BaseModel):
    """What the therapist learned of the doctor's check (or why the course goes on
    without it)."""

    location_id: str = Field(min_length=1, description="where the check was recorded")
    outcome: MedicalCheckOutcome = Field(
        description="cleared: the doctor found no reason not to treat; override: go on "
        "without the check (reason required); not_cleared: the doctor advised against "
        "treatment, the course ends referred"
    )
    reason: str | None = Field(
        default=None,
        max_length=1000,
        validate_default=True,
        description="required with override: why the course goes on without the check",
    )

    @field_validator("reason")
    @classmethod
    def _override_says_why(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("outcome") == "override" and not (reason or "").strip():
            raise ValueError("an override needs a reason")
        return reason


class MedicalCheckAccepted(BaseModel):
    check_id: str


@router.post(
    "/{client_id}/medical-checks",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MedicalCheckAccepted,
    responses=errors(401, 403, 404, 409, 413, 422, 429, 503),
)
async def record_medical_check(
    client_id: str,
    check: MedicalCheckInput,
    principal: CurrentPrincipal,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> MedicalCheckAccepted:
    """Record the doctor's check a red flag asked for, or the therapist's override;
    202 once it is stored with its ``medical_check.recorded``."""
    require_role(principal, "therapist")
    runtime = runtime_of(request)
    directory = ClientDirectory.of(runtime)
    client_id = await directory.canonical(client_id)
    visible(principal, await directory.locations(client_id))
    check_location(runtime, principal, check.location_id, field=("body", "location_id"))
    if not idempotency_key:
        return await _record(runtime, principal, client_id, check, str(uuid.uuid4()))
    key = runtime.keys("idempotency", principal.key_id, "medical-check", idempotency_key)
    check_id = derived_id("medical-check", principal.key_id, idempotency_key)
    body = f"{client_id}\x1f{check.model_dump_json()}"
    try:
        async with reserved(runtime.redis, key, fingerprint_of(body)) as held:
            return await _record(
                runtime,
                principal,
                client_id,
                check,
                check_id,
                answered=lambda pipe, answer: held.complete_on(
                    pipe, answer.model_dump(mode="json")
                ),
            )
    except Replay as replay:
        return MedicalCheckAccepted.model_validate(replay.response)


async def _record(
    runtime: Runtime,
    principal: Principal,
    client_id: str,
    check: MedicalCheckInput,
    check_id: str,
    answered: Callable[[Any, MedicalCheckAccepted], None] | None = None,
) -> MedicalCheckAccepted:
    if principal.therapist_id is None:  # the chain config guarantees one for therapist keys
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key names no therapist")
    now = runtime.clock.now()
    event = MedicalCheckRecorded(
        check_id=check_id,
        client_id=client_id,
        therapist_id=principal.therapist_id,
        recorded_at=now,
        **check.model_dump(),
    )
    outgoing = runtime.outgoing(
        event,
        key=client_id,
        subject=client_id,
        event_id=derived_id("medical_check.recorded", check_id),
        trace=Trace(
            chainid=runtime.chain.chain.id, correlationid=check_id, locationid=check.location_id
        ),
        time=now,
    )
    accepted = MedicalCheckAccepted(check_id=check_id)

    async def writes(pipe: Any) -> None:
        if answered is not None:
            answered(pipe, accepted)

    await intake_outbox(runtime).commit(runtime.publisher, [outgoing], writes)
    return accepted
