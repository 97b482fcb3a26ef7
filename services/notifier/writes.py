"""The writes of one notifier handler, sent to Redis as one transaction: a single
round trip however many notifications a visit (or a run of visits) arms.

Arming and moving notifications are Lua scripts rather than plain commands
because each is conditional per notification: a record is armed only when it is
new (a redelivered cause finds it, and must leave it and its timer alone: the
reminder may be in flight, sent, or waiting for a retry), and moved only when its
status is still the one it was read with. One script call carries every
notification of a kind queued in a row; plain writes (a contact, a plan) go in
the same MULTI, so what a handler writes lands whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import redis.asyncio as aioredis

from services.notifier import wait_scripts
from services.notifier.delivery import Contact
from shared.aliases import alias_key
from shared.redis_store import Keys

# KEYS: due, then per notification its record and the client's log. ARGV per
# notification: id, record, due epoch ('' when closed: logged, never armed), log
# score. 1 for each new record; for each that was there already (left as it is,
# with its timer) the record as stored, so a redelivered cause announces what was
# stored and first announced.
ARM = """
local armed = {}
for k = 2, #KEYS, 2 do
  local a = 1 + 2 * (k - 2)
  local id = ARGV[a]
  if redis.call('SET', KEYS[k], ARGV[a + 1], 'NX') then
    redis.call('ZADD', KEYS[k + 1], ARGV[a + 3], id)
    if ARGV[a + 2] ~= '' then redis.call('ZADD', KEYS[1], ARGV[a + 2], id) end
    armed[#armed + 1] = 1
  else
    armed[#armed + 1] = redis.call('GET', KEYS[k]) or 0
  end
end
return armed
"""
# KEYS: due, then each notification's record. ARGV per notification: expected status,
# new record, id, due epoch or '' (disarm). 1 for each moved, 0 for each someone
# else moved first (or that is gone). The in-flight claim stays until the sender
# has published what happened (``NotificationStore.release``).
MOVE = """
local moved = {}
for k = 2, #KEYS do
  local a = 4 * (k - 2)
  local raw = redis.call('GET', KEYS[k])
  if raw and cjson.decode(raw).status == ARGV[a + 1] then
    redis.call('SET', KEYS[k], ARGV[a + 2])
    if ARGV[a + 4] ~= '' then redis.call('ZADD', KEYS[1], ARGV[a + 4], ARGV[a + 3])
    else redis.call('ZREM', KEYS[1], ARGV[a + 3]) end
    moved[#moved + 1] = 1
  else
    moved[#moved + 1] = 0
  end
end
return moved
"""
_SCRIPTS = {
    "arm": ARM,
    "move": MOVE,
    "wait": wait_scripts.WAIT,
    "release": wait_scripts.RELEASE,
}
_LONE = {
    "waiting": wait_scripts.WAITING,
    "drop": wait_scripts.DROP,
    "merged": wait_scripts.MERGED,
    "ended": wait_scripts.ENDED,
}
Conditional = Literal["arm", "move", "wait", "release"]
Lone = Literal["waiting", "drop", "merged", "ended"]


@dataclass
class _Run:
    """Conditional writes of one kind queued in a row: one script call."""

    kind: Conditional
    keys: list[str]
    args: list[str] = field(default_factory=list)


@dataclass
class _Lone:
    """A script of the waits whose answer is read whole (the drafts it found)."""

    kind: Lone
    keys: list[str]
    args: list[str]


@dataclass
class _Answered:
    """A script of another module's, queued in the transaction; its answer is handed
    to ``sink`` once the transaction ran."""

    source: str
    keys: list[str]
    args: list[str]
    sink: Callable[[Any], None]


@dataclass(frozen=True)
class Outcome:
    armed: list[bool]  # per ``arm``, in order: False where the record existed
    moved: list[bool]  # per ``move``, in order: False where its status had changed
    # per ``arm``, in order: the record found stored where it existed, else None
    existing: list[dict[str, Any] | None] = field(default_factory=list)
    # per ``wait``, in order: "waiting", "known" (decide again) or the stored record
    waited: list[str | dict[str, Any]] = field(default_factory=list)
    released: list[bool] = field(default_factory=list)  # per ``release``, in order
    found: list[str] = field(default_factory=list)  # drafts the lone scripts read


class Writes:
    """Queue a handler's writes, then ``commit`` them in one round trip."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._due = keys("due")
        self._queued: list[Callable[[Any], Any] | _Run | _Lone | _Answered] = []

    def save_contact(self, contact: Contact) -> None:
        self._plain(
            lambda p: p.set(self._keys("contact", contact.client_id), contact.model_dump_json())
        )
        if contact.phone:
            phone = self._keys("phone", contact.phone)
            self._plain(lambda p: p.set(phone, contact.client_id))

    def script(
        self, source: str, keys: list[str], args: list[str], sink: Callable[[Any], None]
    ) -> None:
        """Run ``source`` in the transaction and hand its answer to ``sink``."""
        self._queued.append(_Answered(source, keys, args, sink))

    def plain(self, command: Callable[[Any], Any]) -> None:
        """A plain command on the transaction's pipeline (its answer is not read)."""
        self._plain(command)

    def remember(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Keep something a later message needs (a plan's home program)."""
        self._plain(lambda p: p.set(self._keys(kind, key), json.dumps(value)))

    def arm(self, record: dict[str, Any], *, due_epoch: float | None, logged_epoch: float) -> None:
        """Store a new notification in the client's log and, when ``due_epoch`` is
        given, arm its timer; a notification that exists already is left alone."""
        notification_id = record["notification_id"]
        run = self._run("arm")
        # a visit's notifications are found in the client's log (NotificationStore.for_visit)
        run.keys += [
            self._keys("notification", notification_id),
            self._keys("client-notifications", record["client_id"]),
        ]
        run.args += [
            notification_id,
            json.dumps(record),
            "" if due_epoch is None else repr(due_epoch),
            repr(due_epoch if due_epoch is not None else logged_epoch),
        ]

    def move(
        self, record: dict[str, Any], *, expected: str, due_epoch: float | None = None
    ) -> None:
        """Store ``record`` if its stored status is still ``expected``; re-arm its timer
        at ``due_epoch`` (a retry) or disarm it."""
        notification_id = record["notification_id"]
        run = self._run("move")
        run.keys.append(self._keys("notification", notification_id))
        run.args += [
            expected,
            json.dumps(record),
            notification_id,
            "" if due_epoch is None else repr(due_epoch),
        ]

    def wait(
        self,
        notification_id: str,
        client_id: str,
        visit_id: str | None,
        *,
        draft: str,
        until_epoch: float,
    ) -> None:
        """Keep ``draft`` waiting for the client's contact until ``until_epoch``, unless
        it was armed already or the client is known now (``Outcome.waited``)."""
        run = self._run("wait", first=[self._keys("waits")])
        wait_key = self._keys("wait", notification_id)
        run.keys += [
            self._keys("notification", notification_id),
            wait_key,
            self._keys("client-waits", client_id),
            self._keys("visit-waits", visit_id) if visit_id else wait_key,
            self._keys("contact", client_id),
            alias_key(self._keys, client_id),
        ]
        run.args += [notification_id, draft, repr(until_epoch), "1" if visit_id else ""]

    def waiting(self, client_id: str) -> None:
        """Read the drafts waiting for ``client_id`` (``Outcome.found``): queued after
        the contact's save, so a wait written later sees the contact."""
        self._lone("waiting", [self._keys("client-waits", client_id)], [self._keys("wait", "")])

    def release(
        self,
        record: dict[str, Any],
        *,
        waited_as: str,
        due_epoch: float | None,
        logged_epoch: float,
        entry: tuple[str, str],
        outbox_score: int,
    ) -> None:
        """End the wait of ``record``'s draft (kept under ``waited_as``) by arming it,
        its announcement (``entry``: event id, outbox entry) staged in the outbox;
        nothing when the wait ended already (``Outcome.released``)."""
        notification_id = record["notification_id"]
        visit_id = record.get("visit_id")
        first = [self._due, self._keys("outbox"), self._keys("outbox-due")]
        run = self._run("release", first=[self._keys("waits"), *first], args=[str(outbox_score)])
        record_key = self._keys("notification", notification_id)
        run.keys += [
            self._keys("wait", notification_id),
            self._keys("client-waits", waited_as),
            self._keys("visit-waits", visit_id) if visit_id else record_key,
            record_key,
            self._keys("client-notifications", record["client_id"]),
        ]
        run.args += [
            notification_id,
            json.dumps(record),
            "" if due_epoch is None else repr(due_epoch),
            repr(due_epoch if due_epoch is not None else logged_epoch),
            *entry,
        ]

    def drop_visit_waits(self, visit_id: str) -> None:
        """End the waits of a visit that will not happen (nothing was announced of them)."""
        self._lone(
            "drop",
            [self._keys("waits"), self._keys("visit-waits", visit_id)],
            [self._keys("wait", ""), self._keys("client-waits", "")],
        )

    def merged_waits(self, *, retired: str, survivor: str) -> None:
        """The retired client's waits become the survivor's; ``Outcome.found``: the
        survivor's drafts, when the survivor has a contact to release them with."""
        self._lone(
            "merged",
            [
                self._keys("client-waits", retired),
                self._keys("client-waits", survivor),
                self._keys("contact", survivor),
            ],
            [self._keys("wait", ""), survivor],
        )

    def ended(self, *, now_epoch: float, limit: int) -> None:
        """Read the drafts whose wait ended by ``now_epoch`` (``Outcome.found``)."""
        self._lone(
            "ended", [self._keys("waits")], [repr(now_epoch), str(limit), self._keys("wait", "")]
        )

    async def commit(self) -> Outcome:
        """Send everything queued as one transaction (a lone command needs none)."""
        outcome = Outcome(armed=[], moved=[])
        if not self._queued:
            return outcome
        async with self._redis.pipeline(transaction=len(self._queued) > 1) as pipe:
            for item in self._queued:
                if isinstance(item, _Run):
                    pipe.eval(_SCRIPTS[item.kind], len(item.keys), *item.keys, *item.args)
                elif isinstance(item, _Lone):
                    pipe.eval(_LONE[item.kind], len(item.keys), *item.keys, *item.args)
                elif isinstance(item, _Answered):
                    pipe.eval(item.source, len(item.keys), *item.keys, *item.args)
                else:
                    item(pipe)
            results = await pipe.execute()
        for item, result in zip(self._queued, results, strict=True):
            if isinstance(item, _Answered):
                item.sink(result)
            elif isinstance(item, _Lone) and item.kind != "drop":  # drop answers a count
                outcome.found.extend(str(draft) for draft in result or [])
            elif isinstance(item, _Run) and item.kind == "move":
                outcome.moved.extend(bool(flag) for flag in result)
            elif isinstance(item, _Run) and item.kind == "release":
                outcome.released.extend(bool(flag) for flag in result)
            elif isinstance(item, _Run) and item.kind == "wait":
                outcome.waited.extend(_waited(flag) for flag in result)
            elif isinstance(item, _Run):
                outcome.armed.extend(flag == 1 for flag in result)
                outcome.existing.extend(_stored(flag) for flag in result)
        self._queued = []
        return outcome

    def _plain(self, command: Callable[[Any], Any]) -> None:
        self._queued.append(command)

    def _lone(self, kind: Lone, keys: list[str], args: list[str]) -> None:
        self._queued.append(_Lone(kind=kind, keys=keys, args=args))

    def _run(
        self, kind: Conditional, *, first: list[str] | None = None, args: list[str] | None = None
    ) -> _Run:
        last = self._queued[-1] if self._queued else None
        if isinstance(last, _Run) and last.kind == kind:
            return last
        run = _Run(kind=kind, keys=list(first or [self._due]), args=list(args or []))
        self._queued.append(run)
        return run


def _stored(flag: Any) -> dict[str, Any] | None:
    """What the arm script answered for one notification: 1 (armed) or the record it
    found (0 if that went missing since)."""
    if isinstance(flag, str | bytes):
        return dict(json.loads(flag))
    return None


def _waited(flag: Any) -> str | dict[str, Any]:
    if isinstance(flag, str | bytes):
        return dict(json.loads(flag))
    return "waiting" if flag == 1 else "known"
