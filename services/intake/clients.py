"""The chain's clients: a returning client (same e-mail or phone) keeps their
``client_id``, and staff can look a client up with what the intake service
accepted about them (details, locations, intakes, assessments)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from pydantic import AwareDatetime, BaseModel, Field

from shared.events.intake import (
    AssessmentRecorded,
    ClientDetails,
    ClientRecord,
    IntakeSubmitted,
)
from shared.redis_store import Keys
from shared.vocabulary import ScreeningOutcome


class IntakeSummary(BaseModel):
    intake_id: str
    location_id: str
    submitted_at: AwareDatetime
    screening_outcome: ScreeningOutcome
    referral_recommended: bool


class AssessmentSummary(BaseModel):
    assessment_id: str
    location_id: str
    therapist_id: str
    recorded_at: datetime


class ClientView(BaseModel):
    """A client as staff see it: the latest details and what was recorded about them."""

    client: ClientRecord
    locations: list[str] = Field(description="locations where the client has been seen")
    intakes: list[IntakeSummary]
    assessments: list[AssessmentSummary]


def contact_handles(client: ClientDetails) -> list[str]:
    handles = []
    if client.email:
        handles.append(f"email:{client.email.strip().lower()}")
    if client.phone:
        handles.append(f"phone:{client.phone}")
    return handles


class ClientDirectory:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, chain_id: str) -> None:
        self._redis = redis
        self._keys = keys
        self._chain_id = chain_id

    def _key(self, *parts: str) -> str:
        return self._keys("clients", self._chain_id, *parts)

    async def resolve(self, client: ClientDetails) -> str:
        """The existing client id for any of the contact handles, else a new one (race-safe)."""
        handles = [
            self._keys.shared("clients", self._chain_id, handle)
            for handle in contact_handles(client)
        ]
        for handle in handles:
            known = await self._redis.get(handle)
            if known:
                await self._link(handles, str(known))
                return str(known)
        candidate = str(uuid.uuid4())
        if not handles:
            return candidate
        # SET NX: when two submissions race, the first writer's id wins for both
        await self._redis.set(handles[0], candidate, nx=True)
        winner = str(await self._redis.get(handles[0]))
        await self._link(handles[1:], winner)
        return winner

    async def _link(self, handles: list[str], client_id: str) -> None:
        for handle in handles:
            await self._redis.set(handle, client_id, nx=True)

    async def record_intake(self, event: IntakeSubmitted) -> None:
        """Remember an accepted intake (idempotent: keyed by its id)."""
        client_id = event.client.client_id
        summary = IntakeSummary(
            intake_id=event.intake_id,
            location_id=event.location_id,
            submitted_at=event.submitted_at,
            screening_outcome=event.screening.outcome,
            referral_recommended=event.screening.referral_recommended,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(client_id, "details"), event.client.model_dump_json())
            pipe.sadd(self._key(client_id, "locations"), event.location_id)
            pipe.hset(self._key(client_id, "intakes"), event.intake_id, summary.model_dump_json())
            await pipe.execute()

    async def record_assessment(self, event: AssessmentRecorded) -> None:
        summary = AssessmentSummary(
            assessment_id=event.assessment_id,
            location_id=event.location_id,
            therapist_id=event.therapist_id,
            recorded_at=event.recorded_at,
        )
        await self._redis.hset(
            self._key(event.client_id, "assessments"),
            event.assessment_id,
            summary.model_dump_json(),
        )

    async def locations(self, client_id: str) -> list[str]:
        members: Any = await self._redis.smembers(self._key(client_id, "locations"))
        return sorted(members)

    async def view(self, client_id: str) -> ClientView | None:
        details = await self._redis.get(self._key(client_id, "details"))
        if details is None:
            return None
        intakes: Any = await self._redis.hvals(self._key(client_id, "intakes"))
        assessments: Any = await self._redis.hvals(self._key(client_id, "assessments"))
        return ClientView(
            client=ClientRecord.model_validate_json(details),
            locations=await self.locations(client_id),
            intakes=sorted(
                (IntakeSummary.model_validate_json(raw) for raw in intakes),
                key=lambda i: i.submitted_at,
            ),
            assessments=sorted(
                (AssessmentSummary.model_validate_json(raw) for raw in assessments),
                key=lambda a: a.recorded_at,
            ),
        )
