"""Accepting an intake: screen it, name the client, then store the intake, its
``intake.submitted`` in the outbox and the caller's answer in one Redis
transaction, and only then answer 202: a new client's intake in the script that
claims the client (client_index.py), one round trip; a returning client's in a
script after the naming script named them, which checks first that the request
still holds its guard (an Idempotency-Key, a session's lease: guards.py). Both the
whole-document endpoint and a session's submit come through here, so they give
the same result. The event is built once, here; what is stored in the outbox and
what is sent are the same bytes, and a retry answered from the stored answer
builds nothing again.

202 therefore means accepted: the event is on the broker, or in the outbox that
the relay empties into it (shared/outbox.py). 503 means nothing was stored, so
nothing will be published. The one window left is Redis itself: a transaction
applied whose reply was lost answers 503; a retry (the same session, the same
Idempotency-Key, or the same document from the same key) answers that intake."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from services.intake.checks import problems
from services.intake.clients import ClientDirectory, Guard, Identity, NewClientIntake, Writes
from services.intake.per_runtime import once_per_runtime
from services.intake.screening import screen
from shared.body_map import assess_first
from shared.envelope import Trace, derived_id
from shared.events.intake import (
    ComplaintFinding,
    IntakeDocument,
    IntakeSubmitted,
    Screening,
)
from shared.kafka import Outgoing
from shared.outbox import PUBLISH_WAIT_S, Outbox, epoch_ms
from shared.pain import condition_for, nerve_signs
from shared.runtime import Runtime

# queues the caller's stored answer (a session's submission, an idempotent reply)
# on the transaction that stores the intake, so the two never part
Answered = Callable[[Any, "IntakeAccepted"], None]


class IntakeAccepted(BaseModel):
    """The answer to a submitted intake."""

    intake_id: str = Field(description="correlates every event that follows from this intake")
    client_id: str = Field(
        description="the same for a returning client: same name and e-mail or phone, and no "
        "other date of birth (services/intake/matching.py)"
    )
    screening: Screening
    findings: list[ComplaintFinding] = Field(
        default_factory=list,
        description="per complaint: acute or chronic, nerve signs, muscles to assess first",
    )
    possible_duplicate: bool = Field(
        default=False,
        description="a client seen at this location has this e-mail or phone under another "
        "name or date of birth; kept apart (GET /v1/clients/possible-duplicates, merge by an "
        "admin)",
    )
    contact_change_id: str | None = Field(
        default=None,
        description="details that differ from the returning client's record wait here for a "
        "front desk to confirm (POST /v1/clients/{id}/contact-changes/{change_id}/confirm)",
    )


def findings_for(
    document: IntakeDocument, screening: Screening, *, today: date
) -> list[ComplaintFinding]:
    """What the intake tells the therapist before the assessment (DOMAIN.md 1 and 3)."""
    regions = [c.region for c in document.complaints]
    focus = dict(assess_first(regions, excluded=screening.excluded_regions))
    return [
        ComplaintFinding(
            region=complaint.region,
            side=complaint.side,
            condition=condition_for(complaint, on=today),
            nerve_signs=nerve_signs(complaint),
            assess_first=list(focus.get(complaint.region, ())),
        )
        for complaint in document.complaints
    ]


class PreparedIntake(NamedTuple):
    """An intake's event, ready to publish, and the caller's answer."""

    outgoing: Outgoing
    accepted: IntakeAccepted
    event: IntakeSubmitted


def prepared_intake(
    runtime: Runtime,
    document: IntakeDocument,
    identity: Identity,
    *,
    intake_id: str,
    now: datetime,
    screening: Screening,
    findings: list[ComplaintFinding],
) -> PreparedIntake:
    """The event and the answer of an intake of ``identity``'s client."""
    event = IntakeSubmitted(
        intake_id=intake_id,
        client=identity.client,
        location_id=document.location_id,
        complaints=document.complaints,
        health=document.health,
        goals=document.goals,
        preferences=document.preferences,
        history=document.history,
        consent=document.consent,
        findings=findings,
        screening=screening,
        submitted_at=now,
    )
    client_id = identity.client_id
    outgoing = runtime.outgoing(
        event,
        key=client_id,
        subject=client_id,
        event_id=derived_id("intake.submitted", intake_id),
        trace=Trace(
            chainid=runtime.chain.chain.id, correlationid=intake_id, locationid=event.location_id
        ),
        time=now,
    )
    accepted = IntakeAccepted(
        intake_id=intake_id,
        client_id=client_id,
        screening=screening,
        findings=findings,
        possible_duplicate=identity.possible_duplicate_at(document.location_id),
        contact_change_id=identity.contact_change_id(intake_id),
    )
    return PreparedIntake(outgoing, accepted, event)


def intake_outbox(runtime: Runtime) -> Outbox:
    """The intake's outbox, with the request's publish wait (``INTAKE_PUBLISH_WAIT_S``);
    one per runtime, so it knows what this process published (shared/outbox.py)."""
    wait_s = float(getattr(runtime.base.settings, "publish_wait_s", PUBLISH_WAIT_S))
    return once_per_runtime(
        runtime,
        "outbox",
        lambda: Outbox(runtime.redis, runtime.keys, service=runtime.service, publish_wait_s=wait_s),
    )


async def accept(
    runtime: Runtime,
    document: IntakeDocument,
    *,
    intake_id: str,
    loc: tuple[str, ...] = ("body",),
    answered: Answered | None = None,
    guard: Guard | None = None,
) -> IntakeAccepted:
    """Store the intake with its event and ``answered``'s writes, all or nothing;
    then publish, waiting at most ``INTAKE_PUBLISH_WAIT_S`` (the relay takes over
    after). ``loc`` prefixes the field paths of a 422. ``guard`` (an idempotency
    reservation, a draft's lease) is taken in the first round trip; the caller
    releases it when this raises."""
    now = runtime.clock.now()
    today = now.astimezone(runtime.chain.location(document.location_id).zone).date()
    found = problems(document, chain=runtime.chain, today=today)
    if found:
        raise RequestValidationError(
            [{"loc": (*loc, *path), "msg": msg, "type": "value_error"} for path, msg in found]
        )
    directory = ClientDirectory.of(runtime)
    outbox = intake_outbox(runtime)
    screening = screen(document, today=today)
    findings = findings_for(document, screening, today=today)
    prepared: dict[str, PreparedIntake] = {}  # by client id: the last prepared for each

    def prepare(identity: Identity) -> PreparedIntake:
        intake = prepared[identity.client_id] = prepared_intake(
            runtime,
            document,
            identity,
            intake_id=intake_id,
            now=now,
            screening=screening,
            findings=findings,
        )
        return intake

    def writes_of(identity: Identity) -> tuple[Writes, list[str | int]]:
        """The writes of the intake of ``identity``'s client, its event in the outbox
        among them, and the outbox read-back for them."""
        outgoing, accepted, event = prepare(identity)

        def queue(pipe: Any) -> None:
            directory.record_intake(event, identity, pipe=pipe)
            if answered is not None:
                answered(pipe, accepted)
            outbox.stage_writes(pipe, [outgoing], now_ms=epoch_ms())

        return queue, outbox.peek_args([outgoing])

    removed = outbox.settled_now()
    resolved = await directory.resolve(
        document.client,
        guard=guard,
        new_client=NewClientIntake(stored=writes_of),
    )
    identity = resolved.identity
    if resolved.oldest is not None:  # a new client: stored with the claim
        outbox.removed(removed)
        if guard is not None:
            guard.answered()
        outgoing, accepted, _ = prepared[identity.client_id]
        staged = outbox.staged_now([outgoing], resolved.oldest)
        await outbox.publish_staged(runtime.publisher, [outgoing], staged)
        return accepted
    # a returning client: stored by a script that checks the guard is still ours
    queue, peek = writes_of(identity)
    outgoing, accepted, _ = prepared[identity.client_id]
    removed = outbox.settled_now()
    oldest = await directory.store(queue, peek, guard=guard)
    outbox.removed(removed)
    if guard is not None:
        guard.answered()
    staged = outbox.staged_now([outgoing], oldest)
    await outbox.publish_staged(runtime.publisher, [outgoing], staged)
    return accepted
