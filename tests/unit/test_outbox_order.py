"""When a staged event must wait for the outbox relay (shared/outbox.py): only behind
an older waiting event of its own record key (``behind_older``), so one client's
events keep their order while other clients' requests, still publishing theirs, hold
nobody up; and while the broker is away, without each request waiting for it."""

from __future__ import annotations

from typing import Any

import pytest

from shared.kafka import Outgoing, PublishError
from shared.outbox import BROKER_RETRY_S, Outbox, Staged, behind_older, entry_of, item_of
from shared.redis_store import Keys
from tests.support import plan_completed


def queue(*items: Outgoing) -> list[str]:
    """The queue as a stage reads it back: each id followed by its record key."""
    return [part for item in items for part in (item.envelope.id, item.key)]


def test_an_event_first_in_the_queue_is_published_at_once() -> None:
    mine = plan_completed("ana")
    assert not behind_older([mine], queue(mine))


def test_an_older_waiting_event_of_the_same_client_holds_it_back() -> None:
    waiting, mine = plan_completed("ana"), plan_completed("ana")
    assert behind_older([mine], queue(waiting, mine))


def test_older_events_of_other_clients_hold_nobody_up() -> None:
    others = [plan_completed("ben"), plan_completed("chloe")]
    mine, newer = plan_completed("ana"), plan_completed("ana")
    assert not behind_older([mine], queue(*others, mine, newer))


def test_an_older_event_of_the_client_already_published_holds_nothing_back() -> None:
    published, mine = plan_completed("ana"), plan_completed("ana")
    settled = {published.envelope.id}
    assert not behind_older([mine], queue(published, mine), settled=settled)


def test_an_event_the_read_back_does_not_reach_waits_for_the_relay() -> None:
    backlog = [plan_completed(f"client-{n}") for n in range(4)]
    mine = plan_completed("ana")
    assert behind_older([mine], queue(*backlog))


def test_several_events_of_one_stage_wait_behind_an_older_one_of_any_of_their_keys() -> None:
    waiting = plan_completed("ben")
    ana, ben = plan_completed("ana"), plan_completed("ben")
    assert behind_older([ana, ben], queue(waiting, ana, ben))
    assert not behind_older([ana, ben], queue(plan_completed("chloe"), ana, ben))


def test_an_entry_starts_with_its_key_as_the_stage_script_reads_it() -> None:
    item = plan_completed("ana")
    entry = entry_of(item)
    assert entry.startswith('{"key": "ana", ')
    assert item_of(entry) == item


class Broker:
    """A publisher whose broker is away until told otherwise."""

    def __init__(self) -> None:
        self.away = True
        self.tries = 0

    async def publish(self, items: list[Outgoing]) -> None:
        self.tries += 1
        if self.away:
            raise PublishError("broker did not acknowledge")


class Queue:
    """Just enough of a Redis client for the outbox to remove what it published."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    def pipeline(self, transaction: bool = True) -> Queue:
        return self

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def hdel(self, key: str, *ids: str) -> None:
        self.removed.extend(ids)

    def zrem(self, key: str, *ids: str) -> None:
        return None

    async def execute(self) -> list[object]:
        return []


async def test_while_the_broker_is_away_requests_leave_their_events_to_the_relay_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("shared.outbox.time.monotonic", lambda: clock[0])
    queue, broker = Queue(), Broker()
    outbox = Outbox(queue, Keys("test", "intake"), service="intake")  # type: ignore[arg-type]
    items = [plan_completed("ana")]
    staged = Staged(event_ids=(items[0].envelope.id,), behind=False)
    publisher: Any = broker

    assert not await outbox.publish_staged(publisher, items, staged)
    assert not await outbox.publish_staged(publisher, items, staged)
    assert broker.tries == 1  # the second request did not wait for the broker

    clock[0] += BROKER_RETRY_S
    broker.away = False
    assert await outbox.publish_staged(publisher, items, staged)  # one request tries again
    assert broker.tries == 2
    await outbox.remove_settled()
    assert queue.removed == [items[0].envelope.id]
