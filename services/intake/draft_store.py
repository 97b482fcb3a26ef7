"""Intake drafts in Redis: one hash per session, written only by Lua scripts so
every check and write happens atomically on the server.

Concurrency: the draft has a revision counter and every section remembers the
revision that last wrote it. A patch carries, for each section it touches, the
section revision it read (a compare-and-set, so two merges of one section never
lose an update) and optionally the draft revision the caller last saw
(``If-Match``): the patch is refused when a section it touches was written after
that. Patches of different sections therefore never conflict.

States: ``draft`` -> ``submitting`` (leased to the submit holding it, so a crashed
submit can be retried) -> ``submitted`` (the stored answer is replayed to every
later submit). The lease is taken by the script that names the intake's client
(``DraftLease``: client_index.py), only for the revision the intake was assembled
from; it lasts a few seconds and is renewed while the submit is alive (guards.py),
so a retry takes over from a killed submit within ``GUARD_LEASE_MS``. The
submitted state is written with the intake it stores, by the holder only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

import redis.asyncio as aioredis

from services.intake.drafts import SECTIONS, Section
from services.intake.guards import GUARD_LEASE_MS, holder_token

State = Literal["draft", "submitting", "submitted"]

_PATCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'draft' then return {'state', state} end
local if_match = ARGV[1]
local revision = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if if_match ~= '' and tonumber(if_match) > revision then return {'stale', ''} end
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local section = ARGV[5 + i * 3]
  local written = tonumber(redis.call('HGET', KEYS[1], 'v:' .. section) or '0')
  if if_match ~= '' and written > tonumber(if_match) then return {'stale', section} end
  if written ~= tonumber(ARGV[6 + i * 3]) then return {'raced', section} end
end
revision = redis.call('HINCRBY', KEYS[1], 'rev', 1)
for i = 0, n - 1 do
  local section = ARGV[5 + i * 3]
  redis.call('HSET', KEYS[1], 's:' .. section, ARGV[7 + i * 3], 'v:' .. section, revision)
end
redis.call('HSET', KEYS[1], 'expires_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', tostring(revision)}
"""

_HAND_BACK = """
if redis.call('HGET', KEYS[1], 'state') ~= 'submitting' then return 0 end
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'draft')
return 1
"""


class Gone(Exception):
    """No such session (never created, or expired and removed)."""


class Stale(Exception):
    """``If-Match`` names a revision older than a section the patch touches."""

    def __init__(self, section: str) -> None:
        super().__init__(section)
        self.section = section


class Locked(Exception):
    """The draft is being submitted or has been; it no longer takes patches."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class Raced(Exception):
    """Another patch of the same section landed between read and write."""


class Submitted(Exception):
    """The draft was submitted before: here is that submit's answer."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("submitted")
        self.answer = answer


@dataclass(frozen=True)
class StoredDraft:
    session_id: str
    location_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    state: State
    revision: int
    sections: dict[str, Any]
    section_revisions: dict[str, int]
    submission: dict[str, Any] | None = field(default=None)


class DraftStore:
    """Intake drafts of one deployment; ``ttl`` is both the Redis expiry and the
    ``expires_at`` on the shared clock, moved on by every write."""

    def __init__(self, redis: aioredis.Redis, key_prefix: str, ttl: timedelta) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._ttl = ttl
        self._patch = redis.register_script(_PATCH)
        self._hand_back = redis.register_script(_HAND_BACK)

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:{session_id}"

    def _ttl_ms(self) -> int:
        return int(self._ttl.total_seconds() * 1000)

    async def create(
        self, session_id: str, *, location_id: str, created_by: str, now: datetime
    ) -> datetime:
        expires_at = now + self._ttl
        key = self._key(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "location_id": location_id,
                    "created_by": created_by,
                    "created_at": now.isoformat(),
                    "expires_at": expires_at.isoformat(),
                    "state": "draft",
                    "rev": 0,
                },
            )
            pipe.pexpire(key, self._ttl_ms())
            await pipe.execute()
        return expires_at

    async def load(self, session_id: str) -> StoredDraft:
        raw: Any = await self._redis.hgetall(self._key(session_id))
        if not raw:
            raise Gone(session_id)
        return StoredDraft(
            session_id=session_id,
            location_id=raw["location_id"],
            created_by=raw["created_by"],
            created_at=datetime.fromisoformat(raw["created_at"]),
            expires_at=datetime.fromisoformat(raw["expires_at"]),
            state=_state(raw["state"]),
            revision=int(raw.get("rev", 0)),
            sections={s: json.loads(raw[f"s:{s}"]) for s in SECTIONS if f"s:{s}" in raw},
            section_revisions={s: int(raw[f"v:{s}"]) for s in SECTIONS if f"v:{s}" in raw},
            submission=json.loads(raw["submission"]) if "submission" in raw else None,
        )

    async def write(
        self,
        draft: StoredDraft,
        sections: dict[Section, Any],
        *,
        if_match: int | None,
        now: datetime,
    ) -> int:
        """Write merged sections; returns the new revision (``Raced``: read again)."""
        args: list[str | int] = [
            "" if if_match is None else if_match,
            self._ttl_ms(),
            (now + self._ttl).isoformat(),
            len(sections),
        ]
        for section, value in sections.items():
            args += [section, draft.section_revisions.get(section, 0), json.dumps(value)]
        answer = await self._patch(keys=[self._key(draft.session_id)], args=args)
        outcome = answer[0]
        if outcome == "gone":
            raise Gone(draft.session_id)
        if outcome == "state":
            raise Locked(answer[1])
        if outcome == "stale":
            raise Stale(answer[1])
        if outcome == "raced":
            raise Raced(answer[1])
        return int(answer[1])

    def lease(self, draft: StoredDraft) -> DraftLease:
        """The lease for submitting ``draft`` as it was read (its revision)."""
        return DraftLease(self, self._key(draft.session_id), draft)

    def submitted_on(self, pipe: Any, session_id: str, submission: dict[str, Any]) -> None:
        """Queue the submitted state and its answer on ``pipe``, the transaction that
        stores the intake: a session is submitted exactly when its intake is stored."""
        pipe.hset(
            self._key(session_id),
            mapping={"state": "submitted", "submission": json.dumps(submission)},
        )

    async def hand_back(self, session_id: str, holder: str) -> None:
        """A submit that stored nothing: the draft, still submitting under ``holder``'s
        lease, is editable again (a draft another submit took over stays its)."""
        await self._hand_back(keys=[self._key(session_id)], args=[holder])


class DraftLease:
    """A submit's hold on its draft (client_index.py's guard of kind 'draft'): taken
    only while the draft is still at the revision read, and given back - the draft
    editable again - when the submit stores nothing."""

    def __init__(self, store: DraftStore, key: str, draft: StoredDraft) -> None:
        self._store = store
        self._key = key
        self._draft = draft
        self._holder = holder_token()
        self._held = False
        self._answered = False

    def guard(self) -> tuple[str, str, str, int, str]:
        return "draft", self._key, str(self._draft.revision), GUARD_LEASE_MS, self._holder

    def refused(self, why: str, stored: str | None) -> NoReturn:
        if why == "taken" and stored:
            raise Submitted(json.loads(stored))
        if why == "gone":
            raise Gone(self._draft.session_id)
        if why == "changed":
            raise Raced(self._draft.session_id)
        raise Locked("submitting")

    def taken(self) -> None:
        self._held = True

    def answered(self) -> None:
        self._answered = True

    async def release(self) -> None:
        """Hand the draft back for editing, if this submit leased it and stored nothing."""
        if self._held and not self._answered:
            await self._store.hand_back(self._draft.session_id, self._holder)


_STATES: dict[str, State] = {"draft": "draft", "submitting": "submitting", "submitted": "submitted"}


def _state(raw: str) -> State:
    return _STATES[raw]
