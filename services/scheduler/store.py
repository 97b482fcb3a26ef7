"""The scheduler's calendar in Redis.

Every change to the calendar - booking a plan, rescheduling, cancelling,
completing - is one ``CalendarChange`` applied by one Lua script (``scripts.APPLY``), which first
checks every interval it would hold against what is already held (per
therapist, per room, per client) and writes nothing when any overlaps. That
check, not the per-location lock the handlers also take, is what makes double
booking impossible: a lock whose lease ran out while its holder was paused (GC,
a slow Redis, a rebalance) can let two instances compute at once, but only one
of two overlapping writes can pass the script. The loser re-reads the calendar
and computes again. Redis runs scripts one at a time, so the check and the write
cannot interleave with another instance's.

The events a change publishes are written by the same script to an outbox, so a
change is never applied without its events being delivered later (``relay``),
even when the broker is down at the time.

Restart and rebalance: nothing lives in process memory. A plan event handled
by an instance that dies before committing its offset is handled again by
whoever owns the partition next; the script stored what it produced under the
event's plan version, so that second pass republishes the same events (same
ids) and holds nothing new. Two instances owning the same partition for a
moment during a rebalance are the case the overlap check exists for.

Keys (under the deployment's namespace): ``visit:<id>`` the VisitBooked as last
booked or moved; ``visit-status`` id -> booked|cancelled|completed|no_show;
``held`` id -> the interval it occupies; ``busy:therapist|room|client:...``
sorted by start; ``location-visits:<loc>`` held visits by start; ``location-cancelled:<loc>`` the
visits cancelled there, by the start they had;
``client-visits:<client>`` every visit of the client by start; ``alias:<client>``
and ``aliases:<client>`` the ids retired by a merge (``merging.py``); ``record:<key>``
the stored result of a handled command or event (a plan event's: its envelopes until
they are published, then their ids: ``settling.py``); ``unsettled`` those records by
when to look at them next; ``outbox`` and ``outbox-due``;
``waiting:<loc>`` plan id -> where the plan waits (backfill.py); ``offers-due``
freed slots by when their offer round is due; ``ended``, ``retired`` and
``retired-of:<client>`` the finished courses and the markers of those retired
(``shared.retention``, ``course_sweep.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Literal, cast
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from services.scheduler.directory import Directory, Staffing
from services.scheduler.directory_store import forget as forget_directory
from services.scheduler.scripts import APPLY
from services.scheduler.slots import BookedInterval
from shared.aliases import ClientAliases
from shared.events import VisitBooked
from shared.outbox import epoch_ms
from shared.redis_store import Keys

LOOKBACK = timedelta(days=1)  # a visit that started before "now" may still be running
LONGEST_VISIT = timedelta(minutes=240)  # Policy.visit_minutes is at most 240

# offered: held for a waiting client until the offer is accepted (then booked) or
# closes (released); a released visit holds nothing and is no visit of the client.
VisitStatus = Literal["booked", "cancelled", "completed", "no_show", "offered", "released"]


class Overlap(RuntimeError):
    """Another instance holds an overlapping interval: re-read and compute again."""


@dataclass
class CalendarChange:
    """What one handled event or command does to the calendar, applied atomically."""

    hold: list[VisitBooked] = field(default_factory=list)  # book, or move (same id)
    free: dict[str, VisitStatus] = field(default_factory=dict)  # cancelled / replaced
    status: dict[str, VisitStatus] = field(default_factory=dict)  # completed, no_show
    records: dict[str, str] = field(default_factory=dict)  # record key -> stored result
    # records holding a plan event's envelopes until the consumer has published them,
    # as ``settling.unsettled`` names them: shrunk to their event ids once it has
    settle: list[str] = field(default_factory=list)
    # plan id -> when its course ended (``Retirement.note_ended``'s zset, NX)
    ended: dict[str, datetime] = field(default_factory=dict)
    outbox: dict[str, str] = field(default_factory=dict)  # event id -> encoded envelope
    # what the change was computed from: visit id -> its status and start then; if
    # either moved since (another instance got there first), nothing is written
    expect: dict[str, tuple[VisitStatus, datetime]] = field(default_factory=dict)
    # the waitlist: (location id, plan id) -> the plan's waiting entry, None removes it
    waiting: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # freed slots to offer: slot id -> when to look at it next, None: nothing left to do
    due: dict[str, datetime | None] = field(default_factory=dict)
    # the directory version the change was computed from (None: not checked); if it
    # changed since, nothing is written (``Overlap``: compute again)
    directory: int | None = None
    # a directory change: the new document, written with the visits it re-planned
    directory_document: Directory | None = None
    # location id -> turnover: what the holds there keep free after each visit
    turnover: dict[str, timedelta] = field(default_factory=dict)
    # location id -> (the therapist's daily maximum there, the location's zone)
    caps: dict[str, tuple[int, ZoneInfo]] = field(default_factory=dict)

    def computed_with(self, staffing: Staffing) -> CalendarChange:
        """Check at apply time that the directory is the one ``staffing`` was read
        from, and keep its turnover around the holds."""
        self.directory = staffing.version
        self.turnover[staffing.location.id] = staffing.turnover
        if staffing.max_visits_per_day is not None:
            location = staffing.location
            self.caps[location.id] = (staffing.max_visits_per_day, location.zone)
        return self


class CalendarStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._apply = redis.register_script(APPLY)
        self.aliases = ClientAliases(redis, keys)

    def location_lock_key(self, location_id: str) -> str:
        return self._keys("lock", "location", location_id)

    async def apply(
        self, change: CalendarChange, *, now: datetime, unlock: tuple[str, str] | None = None
    ) -> None:
        """Apply ``change`` atomically; ``Overlap`` (and nothing written) if any interval
        it holds overlaps one already held for the same therapist, room or client.
        ``unlock``: a lock (key, holder's token) the same script lets go, whatever the
        outcome, so holding the location's lock costs no round trip of its own.
        ``now`` is the shared clock's time of the decision the change carries; its
        events queue in the outbox by the real clock, as every outbox's do, so the
        relay's grace period leaves them to the caller publishing them."""
        payload = {
            "hold": [_held(v) for v in change.hold],
            # cjson encodes an empty table as an object either way
            "free": change.free or {},
            "status": change.status or {},
            "records": change.records or {},
            "settle": change.settle,
            "ended": {plan: at.timestamp() for plan, at in change.ended.items()} or {},
            "outbox": [[event_id, raw] for event_id, raw in change.outbox.items()],
            "expect": {
                vid: [state, start.timestamp()] for vid, (state, start) in change.expect.items()
            },
            "waiting": [
                [location_id, plan_id, entry if entry is not None else False]
                for (location_id, plan_id), entry in change.waiting.items()
            ],
            "due": {
                slot: at.timestamp() if at is not None else False for slot, at in change.due.items()
            },
            "directory": _directory(change),
            "turnover": {loc: gap.total_seconds() for loc, gap in change.turnover.items()} or {},
            "daycap": _day_caps(change),
        }
        prefix = self._keys("")[:-1]
        lock, token = unlock if unlock is not None else ("", "")
        result = await self._apply(
            args=[
                prefix,
                LONGEST_VISIT.total_seconds(),
                epoch_ms(),
                json.dumps(payload),
                lock,
                token,
            ]
        )
        if result and result[0] == "overlap":
            raise Overlap(f"visit {result[1]} overlaps visit {result[2]}")
        if result and result[0] == "full":
            raise Overlap(f"visit {result[1]}: {result[2]}'s day is at its daily maximum")
        if result and result[0] == "stale" and result[1] == "directory":
            forget_directory(self._keys)  # the next attempt reads the new one
            raise Overlap(f"the directory changed meanwhile (now version {result[2]})")
        if result and result[0] == "stale":
            raise Overlap(f"visit {result[1]} changed meanwhile (now {result[2]})")

    async def intervals(
        self, location_id: str, *, start: datetime, end: datetime
    ) -> list[BookedInterval]:
        """The intervals held at a location that may overlap ``[start, end)``, read
        from the ``held`` index (a booking reads the whole horizon: no visit records)."""
        found = await self._redis.zrangebyscore(
            self._keys("location-visits", location_id),
            (start - LOOKBACK).timestamp(),
            end.timestamp(),
        )
        if not found:
            return []
        raw = await self._redis.hmget(self._keys("held"), [str(i) for i in found])
        intervals = [_interval(json.loads(item)) for item in raw if item]
        return [i for i in intervals if i.start < end]

    async def therapist_visits(
        self, therapist_id: str, *, start: datetime, end: datetime
    ) -> list[tuple[VisitBooked, VisitStatus]]:
        """The visits the therapist holds (booked, offered, completed, no-show) starting
        in ``[start, end)``, at every location (``busy:therapist:<id>``, by start)."""
        found = await self._redis.zrangebyscore(
            self._keys("busy", "therapist", therapist_id), start.timestamp(), end.timestamp()
        )
        visits = await self.visits([str(i) for i in found])
        return [(v, s) for v, s in visits if start <= v.start < end]

    async def location_cancelled(
        self, location_id: str, *, start: datetime, end: datetime
    ) -> list[VisitBooked]:
        """The visits of a location cancelled from a place starting in ``[start, end)``
        (``location-cancelled:<loc>``, by the start they had)."""
        found = await self._redis.zrangebyscore(
            self._keys("location-cancelled", location_id), start.timestamp(), f"({end.timestamp()}"
        )
        return [v for v, s in await self.visits([str(i) for i in found]) if s == "cancelled"]

    async def location_visits(
        self, location_id: str, *, start: datetime, end: datetime
    ) -> list[VisitBooked]:
        """The visits held at a location that may overlap ``[start, end)``."""
        found = await self._redis.zrangebyscore(
            self._keys("location-visits", location_id),
            (start - LOOKBACK).timestamp(),
            end.timestamp(),
        )
        return [v for v, _ in await self.visits([str(i) for i in found]) if v.start < end]

    async def visit(self, visit_id: str) -> tuple[VisitBooked, VisitStatus] | None:
        raw = await self._redis.get(self._keys("visit", visit_id))
        if raw is None:
            return None
        status = await self._redis.hget(self._keys("visit-status"), visit_id)
        return VisitBooked.model_validate_json(raw), _status(status)

    async def visits(self, visit_ids: list[str]) -> list[tuple[VisitBooked, VisitStatus]]:
        if not visit_ids:
            return []
        raw = await self._redis.mget([self._keys("visit", vid) for vid in visit_ids])
        statuses = await self._redis.hmget(self._keys("visit-status"), visit_ids)
        return visits_of(raw, statuses)

    async def client_visits(self, client_id: str) -> list[tuple[VisitBooked, VisitStatus]]:
        """Every visit of the client in start order; a client id retired by a merge
        answers for the survivor, with the visits of every id retired into it."""
        _, known_as = await self.aliases.known_as(client_id)
        found: dict[str, float] = {}
        for known in known_as:
            index = self._keys("client-visits", known)
            ranked = await self._redis.zrange(index, 0, -1, withscores=True)
            found.update(cast("list[tuple[str, float]]", ranked))
        return await self.visits(sorted(found, key=lambda vid: (found[vid], vid)))

    async def plan_visits(
        self, client_id: str, plan_id: str
    ) -> list[tuple[VisitBooked, VisitStatus]]:
        """Every visit of one plan, in start order, with its status."""
        return [(v, s) for v, s in await self.client_visits(client_id) if v.plan_id == plan_id]

    async def record(self, key: str) -> str | None:
        """The stored result of a handled command or event, if it was handled."""
        raw = await self._redis.get(self._keys("record", key))
        return None if raw is None else str(raw)

    async def records(self, keys: Sequence[str]) -> list[str | None]:
        """``record`` of each key, in one read."""
        if not keys:
            return []
        found = await self._redis.mget([self._keys("record", key) for key in keys])
        return [None if raw is None else str(raw) for raw in found]

    async def waiting(self, location_id: str) -> dict[str, str]:
        """The waitlist of a location: plan id -> its waiting entry."""
        found = await self._redis.hgetall(self._keys("waiting", location_id))
        return {str(plan): str(entry) for plan, entry in found.items()}

    async def waiting_count(self, location_id: str) -> int:
        """How many plans wait at a location."""
        return int(await self._redis.hlen(self._keys("waiting", location_id)))

    async def due_slots(self, now: datetime, limit: int = 50) -> list[str]:
        """Freed slots whose offer round is due (a new slot, a lapsed hold, a decline)."""
        found = await self._redis.zrangebyscore(
            self._keys("offers-due"), "-inf", now.timestamp(), start=0, num=limit
        )
        return [str(slot) for slot in found]

    async def pending_outbox(self, limit: int = 100) -> list[tuple[str, str]]:
        """Events written with a change and not yet confirmed by the broker, oldest first."""
        ids = [str(i) for i in await self._redis.zrange(self._keys("outbox-due"), 0, limit - 1)]
        if not ids:
            return []
        raw = await self._redis.hmget(self._keys("outbox"), ids)
        return [(str(i), str(r)) for i, r in zip(ids, raw, strict=True) if r]

    async def delivered(self, event_ids: list[str]) -> None:
        if not event_ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys("outbox"), *event_ids)
            pipe.zrem(self._keys("outbox-due"), *event_ids)
            await pipe.execute()


def visits_of(
    raw: Sequence[object], statuses: Sequence[object]
) -> list[tuple[VisitBooked, VisitStatus]]:
    """Visits read as ``visit:<id>`` values with their ``visit-status`` fields (in the
    same order), leaving out ids with no visit."""
    return [
        (VisitBooked.model_validate_json(str(item)), _status(status))
        for item, status in zip(raw, statuses, strict=True)
        if item
    ]


@lru_cache(maxsize=16_384)
def interval_from(raw: str) -> BookedInterval:
    """An interval as the ``held`` hash keeps it. Cached by the stored value (the
    interval is immutable): a booking reads the location's held visits again for
    every plan, and most of them have not changed."""
    return _interval(json.loads(raw))


def _day_caps(change: CalendarChange) -> dict[str, list[float]]:
    """Per hold at a location with a daily maximum: the maximum and the bounds of the
    hold's local day (epoch seconds)."""
    caps: dict[str, list[float]] = {}
    for visit in change.hold:
        found = change.caps.get(visit.location_id)
        if found is None:
            continue
        cap, zone = found
        day = visit.start.astimezone(zone).date()
        since = datetime.combine(day, time(), tzinfo=zone)
        until = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        caps[visit.visit_id] = [cap, since.timestamp(), until.timestamp()]
    return caps


def _directory(change: CalendarChange) -> list[object] | bool:
    if change.directory is None:
        return False
    document = change.directory_document
    if document is None:
        return [change.directory, False, False]
    return [change.directory, document.model_dump_json(), document.version]


def _held(visit: VisitBooked) -> dict[str, object]:
    return {
        "visit_id": visit.visit_id,
        "therapist_id": visit.therapist_id,
        "location_id": visit.location_id,
        "room": visit.room,
        "client_id": visit.client_id,
        "start": visit.start.timestamp(),
        "end": visit.end.timestamp(),
        "json": visit.model_dump_json(),
    }


def _interval(held: dict[str, object]) -> BookedInterval:
    return BookedInterval(
        therapist_id=str(held["therapist_id"]),
        room=int(str(held["room"])),
        start=datetime.fromtimestamp(float(str(held["start"])), UTC),
        end=datetime.fromtimestamp(float(str(held["end"])), UTC),
        visit_id=str(held["visit_id"]),
        client_id=str(held["client_id"]),
    )


def _status(raw: object) -> VisitStatus:
    if raw in ("cancelled", "completed", "no_show", "offered", "released"):
        return raw
    return "booked"
