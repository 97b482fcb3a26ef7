"""Client lookup for staff (scoped to the key's locations), possible duplicates and
merges, contact changes waiting for a front desk, and the therapist's assessments
(recorded, and read back)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from services.intake import therapist_records
from services.intake.change_decisions import decide_change
from services.intake.clients import AssessmentRecord, ClientDirectory, ClientView
from services.intake.contact_changes import ChangeDecided, ContactChange
from services.intake.docs import errors
from services.intake.duplicates import (
    DuplicatePair,
    KeepApartInput,
    keep_apart,
    possible_duplicates,
)
from services.intake.merges import MergeAccepted, MergeInput, merge
from services.intake.submission import intake_outbox
from shared import body_map
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.envelope import Trace, derived_id
from shared.events import EventData
from shared.events.intake import (
    AssessmentRecorded,
    ClientRecord,
    ClientUpdated,
    ShortText,
    TriggerPoint,
)
from shared.kafka import Outgoing
from shared.outbox import epoch_ms
from shared.routes import runtime_of
from shared.runtime import Runtime
from shared.vocabulary import Role

router = APIRouter(prefix="/v1/clients", tags=["clients"])


class AssessedTriggerPoint(TriggerPoint):
    """A trigger point as the therapist records it: on a muscle the body map knows."""

    muscle: str = Field(
        min_length=1,
        max_length=100,
        examples=["upper trapezius"],
        description="a muscle of the body map, in any case; a 422 lists the known names",
    )

    @field_validator("muscle")
    @classmethod
    def _known_muscle(cls, value: str) -> str:
        """An unknown name is refused, not dropped: the planner could not target it."""
        if body_map.muscle_named(value) is None:
            raise PydanticCustomError(
                "unknown_muscle",
                "unknown muscle; the known muscles are: " + ", ".join(body_map.KNOWN_MUSCLES),
                {"known": list(body_map.KNOWN_MUSCLES)},
            )
        return value


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
    trigger_points: list[AssessedTriggerPoint] = Field(default_factory=list, max_length=50)
    nerve_signs: list[ShortText] = Field(
        default_factory=list, max_length=20, examples=[["tingling into the right thumb"]]
    )
    notes: str | None = Field(default=None, max_length=4000)


class AssessmentAccepted(BaseModel):
    assessment_id: str


STAFF: tuple[Role, ...] = ("frontdesk", "therapist", "ops", "admin")


# before /{client_id}, which would otherwise take "possible-duplicates" for an id
@router.get(
    "/possible-duplicates",
    response_model=list[DuplicatePair],
    responses=errors(401, 403, 422, 429),
)
async def list_possible_duplicates(
    principal: CurrentPrincipal, request: Request
) -> list[DuplicatePair]:
    """Pairs of clients sharing an e-mail or phone under another name or date of birth,
    where the key reaches a record of each; an admin may merge them."""
    require_role(principal, *STAFF)
    return await possible_duplicates(
        ClientDirectory.of(runtime_of(request)), reaches=principal.reaches
    )


@router.get("/{client_id}", response_model=ClientView, responses=errors(401, 404, 422, 429))
async def read_client(client_id: str, principal: CurrentPrincipal, request: Request) -> ClientView:
    """What was recorded about a client at the key's locations: intakes, assessments,
    contact changes, and the details when at least one of those is in scope. A merged
    client's id answers for the client it was merged into."""
    view = await ClientDirectory.of(runtime_of(request)).view(client_id, reaches=principal.reaches)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return view


@router.get(
    "/{client_id}/assessments/{assessment_id}",
    response_model=AssessmentRecord,
    responses=errors(401, 403, 404, 422, 429),
)
async def read_assessment(
    client_id: str, assessment_id: str, principal: CurrentPrincipal, request: Request
) -> AssessmentRecord:
    """What the therapist recorded in one assessment: posture, range of motion limits,
    trigger points, nerve signs, notes, who, where and when. Staff whose key reaches
    the assessment's location; a merged client's id answers for the client it was
    merged into."""
    require_role(principal, *STAFF)
    directory = ClientDirectory.of(runtime_of(request))
    found = await directory.assessment(client_id, assessment_id, reaches=principal.reaches)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return found


@router.post(
    "/{client_id}/keep-apart",
    response_model=DuplicatePair,
    responses=errors(401, 403, 404, 413, 422, 429),
)
async def keep_clients_apart(
    client_id: str, body: KeepApartInput, principal: CurrentPrincipal, request: Request
) -> DuplicatePair:
    """The two flagged clients are different people (a family sharing a phone): the pair
    leaves the list of possible duplicates and is not raised again."""
    require_role(principal, "frontdesk", "admin")
    runtime = runtime_of(request)
    kept = await keep_apart(
        ClientDirectory.of(runtime),
        client_id,
        body.other_client_id,
        by=principal.key_id,
        at=runtime.clock.now(),
        reaches=principal.reaches,
    )
    if kept is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return kept


@router.post(
    "/{client_id}/merge",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MergeAccepted,
    responses=errors(401, 403, 404, 409, 413, 422, 429, 503),
)
async def merge_clients(
    client_id: str, body: MergeInput, principal: CurrentPrincipal, request: Request
) -> MergeAccepted:
    """Retire ``merged_client_id`` into this client (admin); 202 once the merge and its
    ``client.merged`` are stored (on the broker, or in the outbox the relay empties).
    The same merge again answers the first result and publishes nothing."""
    require_role(principal, "admin")
    return await merge(runtime_of(request), principal, client_id, body)


@router.post(
    "/{client_id}/contact-changes/{change_id}/confirm",
    response_model=ContactChange,
    responses=errors(401, 403, 404, 409, 422, 429),
)
async def confirm_contact_change(
    client_id: str, change_id: str, principal: CurrentPrincipal, request: Request
) -> ContactChange:
    """The client confirmed at the desk what their intake stated: the record takes it
    (and the new e-mail or phone finds them from now on)."""
    return await _decide(request, principal, client_id, change_id, confirm=True)


@router.post(
    "/{client_id}/contact-changes/{change_id}/decline",
    response_model=ContactChange,
    responses=errors(401, 403, 404, 409, 422, 429),
)
async def decline_contact_change(
    client_id: str, change_id: str, principal: CurrentPrincipal, request: Request
) -> ContactChange:
    """What the intake stated is not the client's: the record stays as it is."""
    return await _decide(request, principal, client_id, change_id, confirm=False)


async def _decide(
    request: Request, principal: Principal, client_id: str, change_id: str, *, confirm: bool
) -> ContactChange:
    """Front desk or admin, at the location of the intake that brought the change."""
    require_role(principal, "frontdesk", "admin")
    runtime = runtime_of(request)
    directory = ClientDirectory.of(runtime)
    view = await directory.view(client_id, reaches=principal.reaches)
    pending = {c.change_id: c for c in (view.contact_changes if view else [])}
    if view is None or change_id not in pending:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    now = runtime.clock.now()
    announced: list[Outgoing] = []

    def publish_record(pipe: Any, record: ClientRecord) -> None:
        """``client.updated`` in the outbox, in the transaction that confirms the change:
        the notifier then reaches the client where the front desk confirmed."""
        announced[:] = [_updated(runtime, principal, pending[change_id], record, now)]
        outbox.stage(pipe, announced, now_ms=epoch_ms())

    outbox = intake_outbox(runtime)
    try:
        decided = await decide_change(
            directory,
            view.client.client_id,
            change_id,
            confirm=confirm,
            by=principal.key_id,
            at=now,
            published=publish_record,
        )
    except ChangeDecided as done:
        raise HTTPException(status.HTTP_409_CONFLICT, str(done)) from done
    if decided is None:  # merged away meanwhile
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    if announced:
        await outbox.publish_stored(runtime.publisher, announced)
    return decided


def _updated(
    runtime: Runtime,
    principal: Principal,
    change: ContactChange,
    record: ClientRecord,
    now: datetime,
) -> Outgoing:
    event = ClientUpdated(
        change_id=change.change_id,
        client=record,
        location_id=change.location_id,
        changed_by=principal.key_id,
        changed_at=now,
    )
    return runtime.outgoing(
        event,
        key=record.client_id,
        subject=record.client_id,
        event_id=derived_id("client.updated", change.change_id),
        trace=Trace(
            chainid=runtime.chain.chain.id,
            correlationid=change.intake_id,
            locationid=change.location_id,
        ),
        time=now,
    )


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
    """Record a therapist's assessment; 202 once it is stored with its
    ``assessment.recorded`` (on the broker, or in the outbox the relay empties)."""

    def build(assessment_id: str, client: str, therapist_id: str, now: datetime) -> EventData:
        return AssessmentRecorded(
            assessment_id=assessment_id,
            client_id=client,
            therapist_id=therapist_id,
            recorded_at=now,
            **assessment.model_dump(),
        )

    def also(runtime: Runtime, pipe: Any, event: EventData) -> None:
        assert isinstance(event, AssessmentRecorded)  # what ``build`` makes
        ClientDirectory.of(runtime).record_assessment(event, pipe=pipe)

    return await therapist_records.record(
        request,
        principal,
        client_id,
        assessment,
        location_id=assessment.location_id,
        kind="assessment",
        idempotency_key=idempotency_key,
        build=build,
        answer=AssessmentAccepted,
        id_field="assessment_id",
        also=also,
    )
