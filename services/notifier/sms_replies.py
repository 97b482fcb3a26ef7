"""The texts clients send us, as kept in Redis: one record per text, named by the
provider's message id, so a redelivered webhook finds the record of its first
delivery and answers and publishes from it (the same ``reply.received``, byte for
byte) instead of recording the text again.

A text that is no keyword (``other``) is kept for the front desk, with its words,
in its location's index of unanswered texts until someone marks it answered (who,
when, an optional note); then it moves to the location's answered index. A
keyword's record holds no words and only lasts long enough to catch a redelivery.

Keys: ``sms-reply:<reply_id>``, ``sms-replies:<location_id>:unanswered`` and
``:answered`` (sorted by when the text came)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, Literal

import redis.asyncio as aioredis
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import ReplyReceived
from shared.redis_store import Keys
from shared.vocabulary import ReplyIntent

ReplyStatus = Literal["unanswered", "answered"]

# a provider retries a webhook for minutes, at most hours: a keyword's record need not
# outlive that (a text for the front desk stays until it is answered, and after)
KEYWORD_KEPT_FOR: Final = timedelta(days=7)

# KEYS: the reply, its location's unanswered index. ARGV: the reply, its received epoch,
# "desk" for a text kept for the front desk, else the seconds to keep it.
# The first delivery writes (and indexes) the record; every one returns the stored one.
_KEEP = """
local kept
if ARGV[3] == 'desk' then
  kept = redis.call('set', KEYS[1], ARGV[1], 'NX')
  if kept then redis.call('zadd', KEYS[2], ARGV[2], ARGV[4]) end
else
  kept = redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3])
end
if kept then return ARGV[1] end
return redis.call('get', KEYS[1])
"""


class NextVisit(BaseModel):
    """The client's next visit when the text came: what Y/C confirmed, what the answer
    to any other text links to."""

    model_config = ConfigDict(frozen=True)

    visit_id: str
    location_id: str
    start: AwareDatetime


class SmsReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    reply_id: str = Field(description="the provider's id of the text (Twilio's MessageSid)")
    client_id: str
    location_id: str = Field(description="the client's location: its front desk reads the text")
    asked: ReplyIntent = Field(description="what the words ask for (sms_inbound.classify)")
    intent: ReplyIntent = Field(
        description="what the text is taken as: ``other`` (for the front desk) for a "
        "confirmation with no visit ahead or a score with no check-in to answer"
    )
    received_at: AwareDatetime
    next_visit: NextVisit | None = None
    score: int | None = Field(default=None, description="with intent score")
    checkin_id: str | None = Field(default=None, description="the check-in a score answers")
    text: str | None = Field(default=None, description="only with intent other")
    answered_at: AwareDatetime | None = None
    answered_by: str | None = Field(default=None, description="the name of the key that did")
    answered_by_key: str | None = Field(default=None, description="a digest naming that key")
    note: str | None = None

    @property
    def for_desk(self) -> bool:
        return self.intent == "other"

    @property
    def status(self) -> ReplyStatus:
        return "answered" if self.answered_at is not None else "unanswered"

    def fact(self) -> ReplyReceived:
        """What ``reply.received`` says of it: never the words. A confirmation names the
        visit's location (where the scheduler confirms it), anything else the client's."""
        confirming = self.next_visit if self.intent == "confirm" else None
        return ReplyReceived(
            reply_id=self.reply_id,
            client_id=self.client_id,
            location_id=confirming.location_id if confirming else self.location_id,
            channel="sms",
            intent=self.intent,
            visit_id=confirming.visit_id if confirming else None,
            received_at=self.received_at,
        )

    def answered(self, *, at: datetime, by: str | None, by_key: str, note: str | None) -> SmsReply:
        return self.model_copy(
            update={"answered_at": at, "answered_by": by, "answered_by_key": by_key, "note": note}
        )


class SmsReplies:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._keep = redis.register_script(_KEEP)

    def _index(self, location_id: str, status: ReplyStatus) -> str:
        return self._keys("sms-replies", location_id, status)

    async def get(self, reply_id: str) -> SmsReply | None:
        raw = await self._redis.get(self._keys("sms-reply", reply_id))
        return None if raw is None else SmsReply.model_validate_json(raw)

    async def keep(self, reply: SmsReply) -> SmsReply:
        """Record a text the first time it is delivered (a text for the front desk goes
        into its location's unanswered index too); the record as first kept."""
        desk = "desk" if reply.for_desk else str(int(KEYWORD_KEPT_FOR.total_seconds()))
        stored = await self._keep(
            keys=[
                self._keys("sms-reply", reply.reply_id),
                self._index(reply.location_id, "unanswered"),
            ],
            args=[reply.model_dump_json(), reply.received_at.timestamp(), desk, reply.reply_id],
        )
        return SmsReply.model_validate_json(stored)

    async def listed(
        self, location_id: str, status: ReplyStatus, *, limit: int
    ) -> tuple[int, list[SmsReply]]:
        """How many texts of the location are in ``status``, and the first ``limit`` of
        them: the longest waiting first, or the latest answered first."""
        index = self._index(location_id, status)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(index)
            if status == "unanswered":
                pipe.zrange(index, 0, limit - 1)
            else:
                pipe.zrevrange(index, 0, limit - 1)
            count, ids = await pipe.execute()
        if not ids:
            return int(count), []
        raw = await self._redis.mget([self._keys("sms-reply", str(i)) for i in ids])
        return int(count), [SmsReply.model_validate_json(r) for r in raw if r is not None]

    async def answer(
        self, reply_id: str, *, at: datetime, by: str | None, by_key: str, note: str | None
    ) -> SmsReply | None:
        """Mark a text for the front desk answered, once: a second call finds it answered
        and leaves the first answer as it is. None when there is no such text."""
        key = self._keys("sms-reply", reply_id)
        found: list[SmsReply] = []

        async def mark(pipe: Any) -> None:
            found.clear()
            raw = await pipe.get(key)
            reply = None if raw is None else SmsReply.model_validate_json(raw)
            if reply is None or not reply.for_desk:
                return
            if reply.answered_at is not None:
                found.append(reply)
                return
            done = reply.answered(at=at, by=by, by_key=by_key, note=note)
            found.append(done)
            pipe.multi()
            pipe.set(key, done.model_dump_json())
            pipe.zrem(self._index(reply.location_id, "unanswered"), reply_id)
            pipe.zadd(
                self._index(reply.location_id, "answered"),
                {reply_id: reply.received_at.timestamp()},
            )

        # redis-py's optimistic transaction: watch, read, MULTI, retried on a change
        await self._redis.transaction(mark, key)
        return found[0] if found else None
