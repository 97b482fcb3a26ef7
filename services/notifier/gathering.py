"""Gathering a plan's changes into one message (the rules: services/notifier/batches.py),
and the notifier's own book of each client's visits.

The visit book (``seen-visit:<visit_id>``, and ``upcoming:<client_id>`` by start) is
what the notifier knows of a visit from the visit events: its start and status. It
tells a batch where a cancelled visit was, whether a re-issued booking moved, and a
text reply "Y" which visit is the client's next (``NotificationStore.next_visit``).

A batch (``batch:<id>``, its members in order) is open while its notification is
``scheduled`` and not claimed by a sender; ``batch-open:<plan_id>`` names it. One
script joins a member to the open batch, or arms a new notification and opens it
with that member, in the handler's one transaction; ``batch-of:<plan_id>`` (a hash:
event id -> what it did) makes a redelivered event join nothing twice (it republishes
what it announced if it opened the batch, and nothing if it joined one). A batch
claimed for sending takes no more members: what comes after opens the next one.
``plan-visits:<plan_id>`` names the visits the book holds for a plan, so the course's
sweep finds them (services/notifier/courses.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.notifier import batches
from services.notifier.announcements import restored
from services.notifier.arming import Arming
from services.notifier.delivery import Contact
from services.notifier.notices import notice
from services.notifier.writes import Writes
from shared.envelope import Envelope
from shared.events import EventData, VisitBooked
from shared.events.plans import PlanCompleted, PlanRevised
from shared.events.visits import (
    BookingWaitlisted,
    VisitCancelled,
    VisitCompleted,
    VisitConfirmed,
    VisitNoShow,
    VisitRescheduled,
)
from shared.kafka import Outgoing
from shared.vocabulary import Channel

OFFER_TTL_S = 30 * 24 * 3600  # an offer's hold is hours: a month outlives any redelivery
E = TypeVar("E", bound=EventData)
PREFERRED: tuple[Channel, ...] = ("email", "sms", "webhook", "console")

# KEYS: due, in-flight, batch-open, the plan's batch-of, the new record, client log, the
# new batch, plan-confirmed (or the batch-open key again). ARGV: member, new id, new
# record, due epoch ('' when closed), log score, record key prefix, batch key prefix,
# '1' to mark the plan confirmed, the event id, now (clock epoch), the new batch's due epoch. The
# batch-open pointer is '<id> <due epoch>'. Answers {'seen'|'joined'|'opened', id}.
JOIN = """
local seen = redis.call('HGET', KEYS[4], ARGV[9])
if seen then return {'seen', seen} end  -- '<id> opened' or '<id> joined'
local pointer = redis.call('GET', KEYS[3])
if pointer then
  local open, until_epoch = string.match(pointer, '^(%S+) (%S+)$')
  local raw = open and redis.call('GET', ARGV[6] .. open)
  local status = raw and cjson.decode(raw).status
  local claimed = open and redis.call('ZSCORE', KEYS[2], open)
  -- a batch suppressed when it opened (no consent) gathers its grace period too
  if (status == 'scheduled' and not claimed)
    or (status == 'suppressed' and tonumber(ARGV[10]) < tonumber(until_epoch)) then
    redis.call('RPUSH', ARGV[7] .. open, ARGV[1])
    redis.call('HSET', KEYS[4], ARGV[9], open .. ' joined')
    return {'joined', open}
  end
end
if redis.call('SET', KEYS[5], ARGV[3], 'NX') then
  redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
  if ARGV[4] ~= '' then redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2]) end
end
if ARGV[8] == '1' then redis.call('SET', KEYS[8], '1') end
redis.call('RPUSH', KEYS[7], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2] .. ' ' .. ARGV[11])
redis.call('HSET', KEYS[4], ARGV[9], ARGV[2] .. ' opened')
return {'opened', ARGV[2]}
"""


@dataclass(frozen=True)
class Known:
    """What the notifier knew before an event: each visit's book entry, whether each
    plan's visits were confirmed, which visits are waitlist offers', which plans'
    courses were retired (services/notifier/courses.py)."""

    visits: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    confirmed: dict[str, bool] = field(default_factory=dict)
    offered: dict[str, bool] = field(default_factory=dict)
    retired: set[str] = field(default_factory=set)  # plans of courses swept since


@dataclass
class Joined:
    """What a queued join did, once the transaction ran."""

    how: str = ""
    notification_id: str = ""
    announcement: Outgoing | None = None


class Gathering:
    def __init__(self, arming: Arming) -> None:
        self.arming = arming
        self.runtime = arming.runtime
        self.keys = arming.runtime.keys

    async def reached(self, events: Sequence[E]) -> tuple[list[tuple[E, Contact | None]], Known]:
        """``Arming.reached_all`` of ``events`` and what they need known, in one read."""
        keys = self.wanted(events)
        found, raw, retired = await self.arming.reached_read_retired(events, keys)
        known = self.known_from(events, raw)
        known.retired.update(retired)
        return found, known

    def wanted(self, events: Sequence[EventData]) -> list[str]:
        """The keys of what ``events`` need known (``known_from`` reads their values)."""
        visit_ids, plan_ids = _ids(events)
        keys = [self.keys("seen-visit", v) for v in visit_ids]
        keys += [self.keys("offer-visit", v) for v in visit_ids]
        keys += [self.keys("plan-confirmed", p) for p in plan_ids]
        return keys

    def known_from(self, events: Sequence[EventData], raw: Sequence[Any]) -> Known:
        visit_ids, plan_ids = _ids(events)
        n = len(visit_ids)
        seen, offers, confirmed = raw[:n], raw[n : 2 * n], raw[2 * n :]
        return Known(
            visits={
                v: (json.loads(r) if r else None) for v, r in zip(visit_ids, seen, strict=True)
            },
            offered={v: r is not None for v, r in zip(visit_ids, offers, strict=True)},
            confirmed={p: r is not None for p, r in zip(plan_ids, confirmed, strict=True)},
        )

    def book(self, writes: Writes, event: EventData, known: Known) -> None:
        """Keep the visit book up to date with ``event`` (after ``join``, which reads
        what was known before it)."""
        visit_id = _visit_of(event)
        if visit_id is None or isinstance(event, BookingWaitlisted):
            return
        entry = dict(known.visits.get(visit_id) or {})
        upcoming = self.keys("upcoming", getattr(event, "client_id", ""))
        if isinstance(event, VisitBooked | VisitRescheduled):
            entry.update(
                visit_id=visit_id,
                plan_id=event.plan_id,
                client_id=event.client_id,
                location_id=event.location_id,
                start=event.start.isoformat(),
                status="booked",
            )
            if isinstance(event, VisitRescheduled):
                entry.pop("confirmed_start", None)
            score = event.start.timestamp()
            writes.plain(lambda p: p.zadd(upcoming, {visit_id: score}))
        elif isinstance(event, VisitConfirmed):
            if not entry:
                return
            entry["confirmed_start"] = event.start.isoformat()
        elif isinstance(event, VisitCancelled | VisitNoShow | VisitCompleted):
            if not entry:
                entry = {
                    "visit_id": visit_id,
                    "plan_id": event.plan_id,
                    "client_id": event.client_id,
                    "location_id": event.location_id,
                }
            entry["status"] = {
                VisitCancelled: "cancelled",
                VisitNoShow: "no_show",
                VisitCompleted: "completed",
            }[type(event)]
            writes.plain(lambda p: p.zrem(upcoming, visit_id))
        key = self.keys("seen-visit", visit_id)
        raw = json.dumps(entry)
        writes.plain(lambda p: p.set(key, raw))
        of_plan = self.keys("plan-visits", str(entry["plan_id"]))  # what its course holds
        writes.plain(lambda p: p.sadd(of_plan, visit_id))
        known.visits[visit_id] = entry  # what the next event of a run knew before it

    def offer_made(self, writes: Writes, visit_id: str, offer_id: str) -> None:
        """A waitlist offer holds ``visit_id``: its booking is the offer accepted."""
        key = self.keys("offer-visit", visit_id)
        writes.plain(lambda p: p.set(key, offer_id, ex=OFFER_TTL_S))

    def join(
        self,
        writes: Writes,
        envelope: Envelope,
        event: EventData,
        contact: Contact | None,
        known: Known,
    ) -> Joined | None:
        """Queue ``event``'s member into its plan's open batch, or the opening of a new
        batch with it; None when the client need not be told of the event or the
        chain does not send the kind it would open."""
        plan_id = _plan_of(event)
        client_id = getattr(event, "client_id", None)
        location_id = getattr(event, "location_id", None)
        if plan_id is None or client_id is None or location_id is None:
            return None
        visit_id = _visit_of(event)
        entry = known.visits.get(visit_id) if visit_id else None
        made = batches.member(
            envelope.id, event, known_start=(entry or {}).get("start") if entry else None
        )
        if made is None:
            return None
        kind = batches.kind_for(
            made,
            confirmed=known.confirmed.get(plan_id, False),
            offered=bool(visit_id and known.offered.get(visit_id)),
        )
        policy = self.runtime.chain.policy_for(location_id)
        rule = policy.message_rule(kind)
        if not rule.send:
            return None
        now = self.runtime.clock.now()
        draft = self.arming.soon(
            envelope,
            contact,
            kind=kind,
            cause_id=envelope.id,
            client_id=client_id,
            location_id=location_id,
            at=now + policy.notice_grace,
            context={"plan_id": plan_id},
            quiet=rule.quiet_hours,
        )
        armed = notice(
            draft,
            contact,
            configured=self.arming.channels,
            production=self.arming.production,
            now=now,
            provisional=_first(self.arming.channels),
        )
        record, outgoing = self.arming.stored(armed)
        confirm_key = self.keys("plan-confirmed", plan_id)
        batch_open = self.keys("batch-open", plan_id)
        keys = [
            self.keys("due"),
            self.keys("inflight"),
            batch_open,
            self.keys("batch-of", plan_id),
            self.keys("notification", draft.notification_id),
            self.keys("client-notifications", client_id),
            self.keys("batch", draft.notification_id),
            confirm_key if kind == "booking_confirmation" else batch_open,
        ]
        due = armed.due_epoch
        args = [
            json.dumps(made),
            draft.notification_id,
            json.dumps(record),
            "" if due is None else repr(due),
            repr(due if due is not None else time.time()),
            self.keys("notification", ""),
            self.keys("batch", ""),
            "1" if kind == "booking_confirmation" else "",
            envelope.id,
            repr(now.timestamp()),
            repr(draft.due_at.timestamp()),
        ]
        joined = Joined()

        def answered(result: Any) -> None:
            how, notification_id = (_text(r) for r in result)
            if how == "seen":  # a redelivered event: what it did the first time
                notification_id, _, did = notification_id.partition(" ")
                how = "seen" if did == "opened" else "joined"
            joined.how, joined.notification_id = how, notification_id
            if how == "opened" and notification_id == draft.notification_id:
                joined.announcement = outgoing

        writes.script(JOIN, keys, args, answered)
        if kind == "booking_confirmation":
            known.confirmed[plan_id] = True  # the plan's next event joins or changes it
        return joined

    async def announced(self, joined: Sequence[Joined | None]) -> list[Outgoing]:
        """What the joins announce: each batch opened, and for a redelivered event the
        batch it opened, as first announced (a batch it joined announces nothing)."""
        out: list[Outgoing] = []
        for j in joined:
            if j is None:
                continue
            if j.announcement is not None:
                out.append(j.announcement)
            elif j.how == "seen":
                record = await self.arming.store.get(j.notification_id)
                first = restored(record) if record else None
                if first is not None:
                    out.append(first)
        return _once(out)


def _first(channels: frozenset[Channel]) -> Channel:
    return next((c for c in PREFERRED if c in channels), "console")


def _once(items: list[Outgoing]) -> list[Outgoing]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.envelope.id not in seen:
            seen.add(item.envelope.id)
            out.append(item)
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ids(events: Sequence[EventData]) -> tuple[list[str], list[str]]:
    visit_ids = list(dict.fromkeys(v for e in events if (v := _visit_of(e)) is not None))
    plan_ids = list(dict.fromkeys(p for e in events if (p := _plan_of(e)) is not None))
    return visit_ids, plan_ids


def _visit_of(event: EventData) -> str | None:
    return getattr(event, "visit_id", None)


def _plan_of(event: EventData) -> str | None:
    if isinstance(event, PlanRevised | PlanCompleted):
        return event.plan_id
    return getattr(event, "plan_id", None)
