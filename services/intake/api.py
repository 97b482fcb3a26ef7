"""``POST /v1/intakes``: the whole intake in one request, for integrations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError

from services.intake.docs import ACCEPTED_EXAMPLE, INTAKE_EXAMPLE, errors
from services.intake.guards import renewing
from services.intake.idempotency import IDEMPOTENCY_TTL_S, Replay, Reservation, fingerprint_of
from services.intake.submission import IntakeAccepted, accept
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.envelope import derived_id
from shared.events.intake import IntakeDocument
from shared.openapi import example_answer, example_body
from shared.routes import runtime_of
from shared.runtime import Runtime
from shared.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["intake"])

WRITERS: tuple[Role, ...] = ("frontdesk", "therapist", "admin", "service")


@router.post(
    "/intakes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeAccepted,
    responses={
        202: example_answer(ACCEPTED_EXAMPLE),
        **errors(401, 403, 409, 413, 422, 429, 503),
    },
    openapi_extra=example_body(INTAKE_EXAMPLE),
)
async def submit_intake(
    document: IntakeDocument,
    principal: CurrentPrincipal,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="a retry with the same key and body gets the first answer; "
            "the same key with another body is a 409",
        ),
    ] = None,
) -> IntakeAccepted:
    """Submit a whole intake; 202 once it is stored with its ``intake.submitted``
    (on the broker, or in the outbox the relay empties). Without an
    ``Idempotency-Key``, the same document from the same key within
    ``INTAKE_DUPLICATE_WINDOW_S`` is the same intake: a client retrying after a lost
    answer never creates a second one. A retry while the first request is still at
    work gets 409 with ``Retry-After``; after the first request was killed, the
    first answer (it was stored with the intake) or, nothing stored, its own once
    the first's lease lapses (seconds: services/intake/guards.py)."""
    require_role(principal, *WRITERS)
    runtime = runtime_of(request)
    check_location(runtime, principal, document.location_id, field=("body", "location_id"))
    body = document.model_dump_json()
    fingerprint = fingerprint_of(body)
    if idempotency_key:
        key = runtime.keys("idempotency", principal.key_id, idempotency_key)
        # derived from the key: a retry reuses the intake id
        intake_id = derived_id("intake", principal.key_id, idempotency_key)
        ttl_s = IDEMPOTENCY_TTL_S
    else:
        key = runtime.keys("intake-document", principal.key_id, fingerprint)
        intake_id = str(uuid.uuid4())
        ttl_s = int(getattr(runtime.base.settings, "duplicate_window_s", 86_400))
    held = Reservation(key, fingerprint, ttl_s=ttl_s)
    try:
        async with renewing(runtime.redis, held):  # while alive; killed, it lapses in seconds
            return await accept(
                runtime,
                document,
                intake_id=intake_id,
                answered=lambda pipe, answer: held.complete_on(
                    pipe, answer.model_dump(mode="json")
                ),
                guard=held,
            )
    except Replay as replay:
        return IntakeAccepted.model_validate(replay.response)
    except BaseException:
        # a key this request took and stored no answer for: a retry is handled afresh
        await held.release(runtime.redis)
        raise


def check_location(
    runtime: Runtime, principal: Principal, location_id: str, *, field: tuple[str, ...]
) -> None:
    """The location a body names must exist (422) and be in the key's scope (403)."""
    if not runtime.chain.has_location(location_id):
        raise RequestValidationError(
            [{"loc": field, "msg": "unknown location", "type": "value_error", "input": location_id}]
        )
    if not principal.reaches(location_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "location outside this key's scope")
