"""The chain's clients as the intake service knows them: who an intake names (the
rule is ``matching.py``; this finds the candidates and keeps the decision
race-safe), what was recorded about them and where, and their pending contact
changes (``contact_changes.py``).

Redis layout (``<ns>`` the deployment's namespace, ``<chain>`` the chain id):
- ``<ns>:clients:<chain>:by:<email:x|phone:+1...>``: set of the clients recorded with a handle
- ``<ns>:clients:<chain>:alias``: hash, a merged (retired) id -> the surviving id
- ``<ns>:intake:clients:<chain>:<id>:details``: the client on record (``ClientRecord``)
- ``...:<id>:profile``: what matching knows (every confirmed name and handle)
- ``...:<id>:locations`` / ``:intakes`` / ``:assessments`` / ``:changes`` / ``:merged``
  (``:assessments`` holds each assessment whole, by its id)
- ``<ns>:intake:clients:<chain>:duplicates`` / ``:merges``: see ``duplicates.py``, ``merges.py``
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, NoReturn, Protocol

import redis.asyncio as aioredis
from fastapi import HTTPException, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from redis.asyncio.client import Pipeline

from services.intake.client_index import (
    ADMIT_SCRIPT,
    STORE_SCRIPT,
    candidates_from,
    new_record,
)
from services.intake.contact_changes import (
    ContactChange,
    ProposedDetails,
    proposed_by,
    with_withdrawals,
)
from services.intake.matching import PossibleDuplicate, decide, handles_of, known_from
from services.intake.per_runtime import once_per_runtime
from shared.envelope import derived_id
from shared.events.intake import (
    AssessmentRecorded,
    ClientDetails,
    ClientRecord,
    IntakeSubmitted,
    TriggerPoint,
)
from shared.redis_store import Keys
from shared.runtime import Runtime
from shared.vocabulary import ScreeningOutcome

RESOLVE_ATTEMPTS = 5  # each retry means another intake claimed one of the handles meanwhile

# queues on a pipeline what an intake writes once its client is known
Writes = Callable[[Pipeline], None]
NO_GUARD: tuple[str, str, str, int, str] = ("", "", "", 0, "")


class Guard(Protocol):
    """What the naming script takes first, and the script that stores checks again,
    so that one request at a time stores an intake: an Idempotency-Key or a
    session's draft, on a lease (guards.py)."""

    def guard(self) -> tuple[str, str, str, int, str]:
        """Its kind ('key' or 'draft'), key, value, lease in ms and holder, as the
        scripts take them."""
        ...

    def refused(self, why: str, stored: str | None) -> NoReturn:
        """Another request held it (``why``: taken, busy, gone, changed; ``stored``:
        the answer it stored, if any)."""
        ...

    def taken(self) -> None: ...

    def answered(self) -> None: ...


class NewClientIntake(NamedTuple):
    """What to store in the round trip that claims a new client: ``stored(identity)``
    gives the writes for that client and what of the outbox to read back with them
    (``Outbox.peek_args``)."""

    stored: Callable[[Identity], tuple[Writes, Sequence[Any]]]


class Resolved(NamedTuple):
    """The client an intake names; ``oldest`` is the outbox's read-back (``None``
    when what ``NewClientIntake.stored`` gave was not stored: the client was known)."""

    identity: Identity
    oldest: list[str] | None


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


class AssessmentRecord(AssessmentSummary):
    """An assessment as the therapist recorded it (DOMAIN.md 3). One recorded before
    the whole record was kept reads back with its summary only."""

    client_id: str = Field(description="the client (the surviving one, after a merge)")
    posture_findings: list[str] = Field(default_factory=list)
    range_of_motion_limits: list[str] = Field(default_factory=list)
    trigger_points: list[TriggerPoint] = Field(default_factory=list)
    nerve_signs: list[str] = Field(default_factory=list)
    notes: str | None = None


class ClientView(BaseModel):
    """A client as one key sees them: only what was recorded at the key's locations."""

    client: ClientRecord
    locations: list[str] = Field(description="the key's locations where the client was seen")
    intakes: list[IntakeSummary]
    assessments: list[AssessmentSummary]
    contact_changes: list[ContactChange] = Field(
        default_factory=list,
        description="details intakes stated differently from the record: pending until a "
        "front desk confirms or declines them",
    )


class Identity(BaseModel):
    """Who an intake names, as ``resolve`` decided."""

    model_config = ConfigDict(frozen=True)

    client: ClientRecord = Field(description="what intake.submitted carries")
    returning: bool
    possible_duplicates: tuple[PossibleDuplicate, ...] = ()
    proposed: ProposedDetails | None = Field(default=None, description="for a returning client")
    duplicate_locations: tuple[str, ...] = Field(
        default=(), description="where the possibly duplicated clients have records"
    )

    @property
    def client_id(self) -> str:
        return self.client.client_id

    def possible_duplicate_at(self, location_id: str) -> bool:
        """Whether a possibly duplicated client has a record at ``location_id``: the
        intake's own location is told, so another location's clients stay unseen
        (staff reaching both find the pair in the list of possible duplicates)."""
        return location_id in self.duplicate_locations

    def contact_change_id(self, intake_id: str) -> str | None:
        """The id of the pending change this intake states, if it states one."""
        if self.proposed is None or self.proposed.is_empty():
            return None
        return contact_change_id(intake_id)


def contact_change_id(intake_id: str) -> str:
    return derived_id("contact-change", intake_id)


class ClientDirectory:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, chain_id: str) -> None:
        self._redis = redis
        self._keys = keys
        self._chain_id = chain_id
        self._admit = redis.register_script(ADMIT_SCRIPT)
        self._store = redis.register_script(STORE_SCRIPT)

    @classmethod
    def of(cls, runtime: Runtime) -> ClientDirectory:
        """The directory of the chain the service runs for (one per runtime: built at
        its first use)."""
        return once_per_runtime(
            runtime,
            "client-directory",
            lambda: cls(runtime.redis, runtime.keys, chain_id=runtime.chain.chain.id),
        )

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    def key(self, *parts: str) -> str:
        """A key of the intake service's client records (no parts: their prefix)."""
        return self._keys("clients", self._chain_id, *parts)

    def shared_key(self, *parts: str) -> str:
        """A key of the chain's client index: handles, aliases (no parts: the prefix)."""
        return self._keys.shared("clients", self._chain_id, *parts)

    async def resolve(
        self,
        client: ClientDetails,
        *,
        guard: Guard | None = None,
        new_client: NewClientIntake | None = None,
    ) -> Resolved:
        """The client an intake's details name (``matching.decide``), else a new one,
        claimed on its handles atomically so that concurrent submissions agree; with
        ``new_client``, a new client's intake is stored in that same round trip.
        ``guard`` is taken first, and checked again by every later attempt (its
        ``refused`` raises when another holds it)."""
        handles = [f"{handle}:{value}" for handle, value in handles_of(client)]
        new_id = str(uuid.uuid4())
        held = guard.guard() if guard is not None else NO_GUARD
        flags: tuple[PossibleDuplicate, ...] = ()
        seen_at: tuple[str, ...] = ()
        expected = ""
        for _ in range(RESOLVE_ATTEMPTS):
            record = new_record(new_id, client, flags)
            fresh = Identity(
                client=record,
                returning=False,
                possible_duplicates=flags,
                duplicate_locations=seen_at,
            )
            stored: list[Any] = ["", "", "", 0]
            if new_client is not None:
                writes, peek = new_client.stored(fresh)
                stored = [*peek, *self._flattened(writes)]
            profile = known_from(new_id, client) if handles else None
            reply = await self._admit(
                args=[
                    *held,
                    self.shared_key(),
                    self.key(),
                    expected,
                    new_id,
                    record.model_dump_json() if handles else "",
                    profile.model_dump_json() if profile is not None else "",
                    len(handles),
                    *handles,
                    *stored,
                ]
            )
            if reply[0] == "refused":
                assert guard is not None  # only a guard is ever refused
                guard.refused(str(reply[1]), str(reply[2]) or None)
            if guard is not None:
                guard.taken()
            if reply[0] == "claimed":
                oldest = [str(v) for v in reply[1:]] if new_client is not None else None
                return Resolved(fresh, oldest)
            found = [str(v) for v in reply[1::4]]
            candidates = candidates_from(reply[1:])
            decision = decide(client, [c.known for c in candidates.values()])
            flags = decision.possible_duplicates
            seen_at = tuple(
                sorted({loc for f in flags for loc in candidates[f.client_id].locations})
            )
            if decision.client_id is not None:
                recorded = candidates[decision.client_id].record
                effective = with_withdrawals(recorded, client).model_copy(
                    update={"possible_duplicate_of": [f.client_id for f in flags]}
                )
                returning = Identity(
                    client=effective,
                    returning=True,
                    possible_duplicates=flags,
                    proposed=proposed_by(recorded, client),
                    duplicate_locations=seen_at,
                )
                return Resolved(returning, None)
            expected = ",".join(found)  # sorted by the script
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the client directory kept changing while naming this client; retry",
            headers={"Retry-After": "1"},
        )

    async def store(
        self, writes: Writes, peek: Sequence[Any], *, guard: Guard | None = None
    ) -> list[str]:
        """Apply ``writes`` in one script, if ``guard`` is still this request's (its
        ``refused`` raises when another took it over); returns the outbox's read-back
        for ``peek`` (``Outbox.peek_args``)."""
        held = guard.guard() if guard is not None else NO_GUARD
        reply = await self._store(args=[*held, *peek, *self._flattened(writes)])
        if reply[0] == "refused":
            assert guard is not None  # only a guard is ever refused
            guard.refused(str(reply[1]), str(reply[2]) or None)
        return [str(v) for v in reply[1:]]

    def _flattened(self, writes: Writes) -> list[Any]:
        """``writes`` as the script takes them: each command's argument count, then
        its arguments (queued on a pipeline that is never sent)."""
        pipe = self._redis.pipeline(transaction=False)
        writes(pipe)
        flat: list[Any] = []
        for args, _ in pipe.command_stack:
            flat.append(len(args))
            flat.extend(args)
        return flat

    def record_intake(self, event: IntakeSubmitted, identity: Identity, *, pipe: Pipeline) -> None:
        """Queue an accepted intake on ``pipe``, the transaction that stages its event
        (idempotent: keyed by its id), with the contact change it states and the
        duplicates it may be."""
        client_id = event.client.client_id
        summary = IntakeSummary(
            intake_id=event.intake_id,
            location_id=event.location_id,
            submitted_at=event.submitted_at,
            screening_outcome=event.screening.outcome,
            referral_recommended=event.screening.referral_recommended,
        )
        pipe.set(self.key(client_id, "details"), event.client.model_dump_json())
        pipe.sadd(self.key(client_id, "locations"), event.location_id)
        pipe.hset(self.key(client_id, "intakes"), event.intake_id, summary.model_dump_json())
        change_id = identity.contact_change_id(event.intake_id)
        if identity.proposed is not None and change_id is not None:
            change = ContactChange(
                change_id=change_id,
                intake_id=event.intake_id,
                location_id=event.location_id,
                proposed=identity.proposed,
                recorded_at=event.submitted_at,
            )
            # NX: a repeated intake never reopens a change already decided
            pipe.hsetnx(self.key(client_id, "changes"), change.change_id, change.model_dump_json())
        for flag in identity.possible_duplicates:
            pair = sorted((client_id, flag.client_id))
            entry = {
                "client_ids": pair,
                "shared": list(flag.shared),
                "conflicts": list(flag.conflicts),
                "location_id": event.location_id,
                "flagged_at": event.submitted_at.isoformat(),
            }
            pipe.hsetnx(self.key("duplicates"), "|".join(pair), json.dumps(entry))

    def record_assessment(self, event: AssessmentRecorded, *, pipe: Pipeline) -> None:
        """Queue an accepted assessment on ``pipe``, the transaction that stages its
        event: the whole record (it is small), which the client's view summarizes."""
        record = AssessmentRecord.model_validate(event.model_dump())
        pipe.hset(
            self.key(event.client_id, "assessments"), event.assessment_id, record.model_dump_json()
        )
        pipe.sadd(self.key(event.client_id, "locations"), event.location_id)

    async def assessment(
        self, client_id: str, assessment_id: str, *, reaches: Callable[[str], bool]
    ) -> AssessmentRecord | None:
        """One assessment of the client (a merged client's id answers for the survivor),
        if it was recorded at a location ``reaches`` takes in."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.shared_key("alias"), client_id)
            pipe.hget(self.key(client_id, "assessments"), assessment_id)
            survivor, raw = await pipe.execute()
        if survivor:  # merged: its assessments moved to the survivor
            client_id = str(survivor)
            raw = await self._redis.hget(self.key(client_id, "assessments"), assessment_id)
        if raw is None:
            return None
        stored = json.loads(raw)
        record = AssessmentRecord.model_validate({**stored, "client_id": client_id})
        return record if reaches(record.location_id) else None

    async def canonical(self, client_id: str) -> str:
        """The surviving id of a merged client, else the id itself."""
        survivor = await self._redis.hget(self.shared_key("alias"), client_id)
        return str(survivor) if survivor else client_id

    async def locations(self, client_id: str) -> list[str]:
        members: Any = await self._redis.smembers(self.key(client_id, "locations"))
        return sorted(members)

    async def _records(self, client_id: str) -> list[Any]:
        """The alias (if merged) and what is recorded under ``client_id``, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.shared_key("alias"), client_id)
            pipe.get(self.key(client_id, "details"))
            pipe.hvals(self.key(client_id, "intakes"))
            pipe.hvals(self.key(client_id, "assessments"))
            pipe.hvals(self.key(client_id, "changes"))
            records: list[Any] = await pipe.execute()
        return records

    async def view(self, client_id: str, *, reaches: Callable[[str], bool]) -> ClientView | None:
        """What a key reaching ``reaches`` may see: the intakes, assessments and pending
        changes recorded at its locations, and the details only when one is in scope."""
        survivor, details, intakes, assessments, changes = await self._records(client_id)
        if survivor:  # merged: one more round trip, for the survivor's records
            _, details, intakes, assessments, changes = await self._records(str(survivor))
        if details is None:
            return None
        seen = [IntakeSummary.model_validate_json(raw) for raw in intakes]
        assessed = [AssessmentSummary.model_validate_json(raw) for raw in assessments]
        seen = sorted((i for i in seen if reaches(i.location_id)), key=lambda i: i.submitted_at)
        assessed = sorted(
            (a for a in assessed if reaches(a.location_id)), key=lambda a: a.recorded_at
        )
        if not seen and not assessed:
            return None
        pending = [ContactChange.model_validate_json(raw) for raw in changes]
        return ClientView(
            client=ClientRecord.model_validate_json(details),
            locations=sorted({i.location_id for i in seen} | {a.location_id for a in assessed}),
            intakes=seen,
            assessments=assessed,
            contact_changes=sorted(
                (c for c in pending if reaches(c.location_id)), key=lambda c: c.recorded_at
            ),
        )
