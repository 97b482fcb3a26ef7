"""The doctor's check a red flag asks for (DOMAIN.md 1), recorded by the therapist.

A plan opened by a red flag books its assessment visit only; the rest of the course
waits for this record (``medical_check.recorded``): cleared or overridden, the planner
books the rest; not cleared, the course ends referred. Stored with its event in the
intake's outbox, like an assessment, so an accepted record is never lost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from services.intake import therapist_records
from services.intake.docs import errors
from shared.auth import CurrentPrincipal
from shared.events import EventData
from shared.events.intake import MedicalCheckRecorded
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

    def build(check_id: str, client: str, therapist_id: str, now: datetime) -> EventData:
        return MedicalCheckRecorded(
            check_id=check_id,
            client_id=client,
            therapist_id=therapist_id,
            recorded_at=now,
            **check.model_dump(),
        )

    return await therapist_records.record(
        request,
        principal,
        client_id,
        check,
        location_id=check.location_id,
        kind="medical-check",
        idempotency_key=idempotency_key,
        build=build,
        answer=MedicalCheckAccepted,
        id_field="check_id",
    )
