"""A request of ``POST /v1/intakes`` stopped dead - frozen where a SIGKILL would leave
it, no code of it running: no renewal, no release - and retried with the same
Idempotency-Key. Before it stored anything: the retry is refused while the first
one's lease runs, takes over within seconds once it lapses, and when the first
comes back to life its store is refused and it answers the retry's intake - one
intake, one ``intake.submitted``. After it stored: the retry gets the first answer
at once, and the event, sent by the relay and by the first request, is the same
bytes each time."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.intake import guards
from services.intake.app import build_app
from services.intake.clients import ClientDirectory
from services.intake.guards import GUARD_LEASE_MS
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher
from shared.outbox import Outbox, epoch_ms
from shared.redis_store import Keys
from shared.settings import CommonSettings
from tests.integration.test_intake_submission import PUBLISH_WAIT_S, Intake, document_for, submitted
from tests.support import TopicLog, eventually, in_process_service, intake_settings, plan_completed

pytestmark = pytest.mark.integration

TAKEN_OVER_WITHIN_S = GUARD_LEASE_MS / 1000 + 2.0


@pytest.fixture
async def intake(infra: Infra, namespace: str) -> AsyncIterator[Intake]:
    """The intake app with an outbox of its own, whose relay leaves the test's entries
    alone (the tests relay them themselves)."""
    own = f"{namespace}-{uuid.uuid4().hex[:6]}"
    settings = intake_settings(infra, own, INTAKE_PUBLISH_WAIT_S=PUBLISH_WAIT_S)
    redis = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    async with in_process_service(build_app, settings) as http:
        yield Intake(http, redis, Keys(own, "intake"), infra)
    await redis.aclose()


async def frozen_at(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """Freeze the next call of ``owner.name`` (and stop every lease renewal while it
    is frozen): the events tell when it froze and let it go on."""
    original = getattr(owner, name)
    froze, thaw = asyncio.Event(), asyncio.Event()
    renew = guards.renew

    async def freezing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not froze.is_set():
            froze.set()
            await thaw.wait()
        return await original(self, *args, **kwargs)

    async def no_renewal_while_frozen(redis: Any, held: Any) -> bool:
        return False if froze.is_set() and not thaw.is_set() else await renew(redis, held)

    monkeypatch.setattr(owner, name, freezing)
    monkeypatch.setattr(guards, "renew", no_renewal_while_frozen)
    return froze, thaw


async def retried_until_accepted(intake: Intake, document: dict[str, Any], key: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        answer = await intake.submit(document, key)
        if answer.status_code == 202:
            return answer
        assert answer.status_code == 409, answer.text
        assert "still being processed" in answer.json()["detail"]
        assert time.monotonic() < deadline, "the retry never took over"
        await asyncio.sleep(0.1)


async def test_a_retry_takes_over_in_seconds_from_a_request_that_died_before_storing(
    intake: Intake, topics: TopicLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = document_for("Dana Dead")
    known = await intake.submit(document)  # a returning client: stored after naming
    assert known.status_code == 202, known.text
    again = {**document, "goals": ["after the crash"]}
    key = f"crash-{uuid.uuid4().hex}"
    froze, thaw = await frozen_at(monkeypatch, ClientDirectory, "store")

    first = asyncio.create_task(intake.submit(again, key))
    await asyncio.wait_for(froze.wait(), timeout=10)  # the key taken, nothing stored
    frozen_since = time.monotonic()
    early = await intake.submit(again, key)
    assert early.status_code == 409, early.text
    retried = await retried_until_accepted(intake, again, key)
    taken_over_after = time.monotonic() - frozen_since
    assert taken_over_after < TAKEN_OVER_WITHIN_S, f"taken over after {taken_over_after:.1f} s"
    assert retried.json()["client_id"] == known.json()["client_id"]

    # the first request comes back: the guard is no longer its, it stores nothing
    # and answers what the retry stored
    thaw.set()
    late = await asyncio.wait_for(first, timeout=10)
    assert late.status_code == 202, late.text
    assert late.json() == retried.json()
    assert (await intake.submit(again, key)).json() == retried.json()

    intake_id = retried.json()["intake_id"]
    await eventually(lambda: submitted(topics, intake_id))
    await topics.caught_up()
    assert len(submitted(topics, intake_id)) == 1
    [event] = submitted(topics, intake_id)
    recorded = await intake.redis.hgetall(
        intake.keys("clients", event["chainid"], retried.json()["client_id"], "intakes")
    )
    assert sorted(recorded) == sorted([known.json()["intake_id"], intake_id])
    # stored once, by the retry: the first request's intake (built earlier) never was
    summary = json.loads(recorded[intake_id])
    assert summary["submitted_at"] == event["data"]["submitted_at"]


async def test_a_retry_after_a_request_died_having_stored_gets_its_answer_and_its_bytes(
    intake: Intake, topics: TopicLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = document_for("Noor Stored")
    key = f"stored-{uuid.uuid4().hex}"
    froze, thaw = await frozen_at(monkeypatch, Outbox, "publish_staged")

    first = asyncio.create_task(intake.submit(document, key))
    await asyncio.wait_for(froze.wait(), timeout=10)  # stored with its answer, not sent
    started = time.monotonic()
    retried = await intake.submit(document, key)
    assert retried.status_code == 202, retried.text
    assert time.monotonic() - started < 1.0
    intake_id = retried.json()["intake_id"]
    [event_id] = await intake.queued()
    stored = json.loads(await intake.redis.hget(intake.keys("outbox"), event_id))

    # the relay sends the stored entry; then the first request wakes up and sends its own
    publisher = Publisher(
        CommonSettings(KAFKA_BOOTSTRAP_SERVERS=intake.infra.kafka_bootstrap_servers),
        client_id="crash-relay-test",
    )
    await publisher.start()
    try:
        # what the relay sends (the app's own relay holds the lease)
        relay = Outbox(intake.redis, intake.keys, service="intake", grace_ms=0)
        await publisher.publish(await relay.pending())
    finally:
        await publisher.stop()
    thaw.set()
    late = await asyncio.wait_for(first, timeout=10)
    assert late.status_code == 202, late.text
    assert late.json() == retried.json()

    def records() -> list[bytes] | None:
        # the event itself, not the events it caused (a plan names it as causationid)
        found = [
            r.value
            for r in topics.records
            if r.value and event_id.encode() in r.value and _id_of(r.value) == event_id
        ]
        return found or None

    await eventually(records)
    await topics.caught_up()  # whatever else sent it (the first request, the app's relay)
    sent = records() or []
    assert set(sent) == {stored["envelope"].encode()}  # every copy the very stored bytes
    assert {e["correlationid"] for e in submitted(topics, intake_id)} == {intake_id}


async def test_an_event_staged_again_keeps_its_first_bytes_and_the_relay_sends_them_as_stored(
    intake: Intake, topics: TopicLog
) -> None:
    """The relay sends an entry's text as it is (not decoded and encoded again), and
    staging an event id that waits keeps the first entry: a rebuilt envelope with a
    new time never replaces what may have been sent."""
    outbox = Outbox(intake.redis, intake.keys, service="intake", grace_ms=0)
    first = plan_completed(str(uuid.uuid4()), service="intake")
    async with intake.redis.pipeline(transaction=True) as pipe:
        outbox.stage(pipe, [first], now_ms=epoch_ms())
        await pipe.execute()
    # the stored text as another encoder wrote it (its own spacing and key order)
    written = json.dumps(json.loads(first.value), indent=1, sort_keys=True)
    entry = json.dumps({"key": first.key, "envelope": written})
    await intake.redis.hset(intake.keys("outbox"), first.envelope.id, entry)
    # rebuilt later: the same id, another time
    later = first.envelope.model_copy(update={"time": first.envelope.time + timedelta(hours=1)})
    async with intake.redis.pipeline(transaction=True) as pipe:
        outbox.stage(pipe, [Outgoing(key=first.key, envelope=later)], now_ms=epoch_ms())
        await pipe.execute()
    assert await intake.redis.hget(intake.keys("outbox"), first.envelope.id) == entry

    publisher = Publisher(
        CommonSettings(KAFKA_BOOTSTRAP_SERVERS=intake.infra.kafka_bootstrap_servers),
        client_id="restage-relay-test",
    )
    await publisher.start()
    try:
        [item] = await outbox.pending()  # what the relay sends
        await publisher.publish([item])
    finally:
        await publisher.stop()
    record = await eventually(lambda: topics.record_of(first.envelope.id))
    assert record.value == written.encode()


def _id_of(value: bytes) -> str | None:
    try:
        found = json.loads(value).get("id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
