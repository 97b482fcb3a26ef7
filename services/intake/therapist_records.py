"""What a therapist records about a client (an assessment, the doctor's check a red
flag asked for) is accepted the same way: a therapist key at the record's location,
a client the key reaches (merged ids answer as the survivor), an ``Idempotency-Key``
that makes a retry answer the first result, and the record's event stored in the
outbox with the answer in one transaction before the 202."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from pydantic import BaseModel

from services.intake.api import check_location
from services.intake.clients import ClientDirectory
from services.intake.idempotency import Replay, fingerprint_of, reserved
from services.intake.submission import intake_outbox
from shared.auth import Principal, require_role
from shared.envelope import Trace, derived_id
from shared.events import EventData
from shared.routes import runtime_of, visible
from shared.runtime import Runtime

A = TypeVar("A", bound=BaseModel)
Build = Callable[[str, str, str, datetime], EventData]
"""(record id, client id, therapist id, now) -> the record's event."""
Also = Callable[[Runtime, Any, EventData], None]
"""Writes of the service's own that go into the same transaction (``pipe``)."""
Answered = Callable[[Any, BaseModel], None]


async def record(
    request: Request,
    principal: Principal,
    client_id: str,
    body: BaseModel,
    *,
    location_id: str,
    kind: str,
    idempotency_key: str | None,
    build: Build,
    answer: type[A],
    id_field: str,
    also: Also | None = None,
) -> A:
    """Accept one therapist record of ``kind`` (its ids derive from the key and the
    ``Idempotency-Key``, when there is one) and answer ``answer`` with the record's
    id as ``id_field``."""
    require_role(principal, "therapist")
    runtime = runtime_of(request)
    directory = ClientDirectory.of(runtime)
    client_id = await directory.canonical(client_id)
    visible(principal, await directory.locations(client_id))
    check_location(runtime, principal, location_id, field=("body", "location_id"))
    therapist_id = principal.therapist_id
    if therapist_id is None:  # the chain config guarantees one for therapist keys
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key names no therapist")

    async def store(record_id: str, answered: Answered | None) -> A:
        now = runtime.clock.now()
        event = build(record_id, client_id, therapist_id, now)
        outgoing = runtime.outgoing(
            event,
            key=client_id,
            subject=client_id,
            event_id=derived_id(event.event_type, record_id),
            trace=Trace(
                chainid=runtime.chain.chain.id, correlationid=record_id, locationid=location_id
            ),
            time=now,
        )
        accepted = answer.model_validate({id_field: record_id})

        async def writes(pipe: Any) -> None:
            if also is not None:
                also(runtime, pipe, event)
            if answered is not None:
                answered(pipe, accepted)

        await intake_outbox(runtime).commit(runtime.publisher, [outgoing], writes)
        return accepted

    if not idempotency_key:
        return await store(str(uuid.uuid4()), None)
    key = runtime.keys("idempotency", principal.key_id, kind, idempotency_key)
    fingerprint = fingerprint_of(f"{client_id}\x1f{body.model_dump_json()}")
    try:
        async with reserved(runtime.redis, key, fingerprint) as held:
            return await store(
                derived_id(kind, principal.key_id, idempotency_key),
                lambda pipe, answer: held.complete_on(pipe, answer.model_dump(mode="json")),
            )
    except Replay as replay:
        return answer.model_validate(replay.response)
