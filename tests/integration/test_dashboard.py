"""The ops dashboard against the real broker and Redis: its read model follows the
public topics, survives a restart without counting twice, can be rebuilt from
offset 0, and replays a dead letter to its topic byte for byte, once.

The broker is shared by the whole run, so every event here is for a location of
this test's own (added to the demo chain), and the assertions read that location."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.dashboard.app import build_app
from services.dashboard.projector import rebuild
from services.dashboard.store import DashboardStore
from shared.clock import parse_clock
from shared.codec import encode, wrap
from shared.envelope import Trace
from shared.events import EventData, NotificationFailed, NotificationSent, VisitBooked
from shared.events.notifications import NotificationSuppressed
from shared.events.visits import BookingWaitlisted
from shared.infra import Infra
from shared.kafka import Outgoing, Publisher, ensure_topics
from shared.redis_store import Keys, connect
from shared.settings import DashboardSettings
from shared.streams import RawRecord, StreamProcessor
from tests.conftest import DEMO_CHAIN
from tests.support import in_process_service, served, until

pytestmark = pytest.mark.integration
OPS = {"Authorization": "Bearer demo-ops"}
ADMIN = {"Authorization": "Bearer demo-admin"}
FRONTDESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
STRUCTURED = b"application/cloudevents+json; charset=UTF-8"


@pytest.fixture
def location() -> str:
    return f"dash-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(infra: Infra, location: str, tmp_path: Path) -> DashboardSettings:
    chain = yaml.safe_load(DEMO_CHAIN.read_text())
    model = next(loc for loc in chain["locations"] if loc["id"] == "beaverton")
    chain["locations"].append({**model, "id": location, "name": "Dashboard test"})
    config = tmp_path / "chain.yaml"
    config.write_text(yaml.safe_dump(chain))
    return DashboardSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"dash-{uuid.uuid4().hex[:10]}",
        CLINICFLOW_CHAIN_CONFIG=config,
        CLINICFLOW_ENV="test",
        DASHBOARD_SERVICES="intake=http://127.0.0.1:9",  # nothing listens: shown as down
        DASHBOARD_POLL_INTERVAL_S=0.5,
    )


@pytest.fixture
async def publisher(settings: DashboardSettings) -> AsyncIterator[Publisher]:
    await ensure_topics(settings.kafka_bootstrap_servers)
    sender = Publisher(settings, client_id="dashboard-test")
    await sender.start()
    yield sender
    await sender.stop()


def event(data: EventData, location: str, client_id: str) -> Outgoing:
    trace = Trace(chainid="northwest-nmt", correlationid=f"i-{client_id}", locationid=location)
    envelope = wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="dashboard-test",
        subject=client_id,
        trace=trace,
        time=datetime.now(UTC),
    )
    return Outgoing(key=client_id, envelope=envelope)


def booked(location: str, client_id: str) -> Outgoing:
    start = datetime.now(UTC) + timedelta(days=3)
    data = VisitBooked(
        visit_id=f"v-{uuid.uuid4().hex[:8]}",
        plan_id="p-dash",
        client_id=client_id,
        location_id=location,
        therapist_id="t-ana",
        room=1,
        start=start,
        end=start + timedelta(hours=1),
        timezone="America/Los_Angeles",
        sequence=1,
        sessions_total=6,
    )
    return event(data, location, client_id)


def waitlisted(location: str, client_id: str) -> Outgoing:
    data = BookingWaitlisted.model_validate(
        {
            "plan_id": "p-dash",
            "client_id": client_id,
            "location_id": location,
            "sequence": 2,
            "sessions_total": 6,
            "reason": "no_slot",
            "detail": "no slot fits the client's days within the horizon",
        }
    )
    return event(data, location, client_id)


def message(kind: type[EventData], location: str, client_id: str, **extra: Any) -> Outgoing:
    data = kind.model_validate(
        {
            "notification_id": f"n-{uuid.uuid4().hex[:8]}",
            "client_id": client_id,
            "location_id": location,
            "kind": "reminder",
            "channel": "sms",
            **extra,
        }
    )
    return event(data, location, client_id)


async def overview(http: httpx.AsyncClient, location: str) -> dict[str, Any]:
    response = await http.get("/v1/overview", params={"location": location}, headers=OPS)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_follows_the_topics_and_counts_once_across_a_restart(
    settings: DashboardSettings, publisher: Publisher, location: str
) -> None:
    client = f"c-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    failed = message(
        NotificationFailed, location, client, reason="smtp 550 mailbox unavailable", failed_at=now
    )
    suppressed = message(
        NotificationSuppressed, location, client, reason="sms_stopped", suppressed_at=now
    )
    await publisher.publish(
        [booked(location, client), booked(location, client), waitlisted(location, client)]
    )
    await publisher.publish([failed, suppressed])
    failed_id = failed.envelope.data["notification_id"]

    async with in_process_service(build_app, settings) as http:

        async def counted() -> dict[str, Any] | None:
            view = await overview(http, location)
            ready = view["bookings"].get(location) == {"booked": 2, "waitlisted": 1}
            return view if ready and view["notifications"]["by_status"].get("failed") else None

        view = await until(counted)
        assert view["notifications"]["by_status"]["failed"] == 1
        problems = {p["notification_id"]: p for p in view["notifications"]["problems"]}
        assert problems[failed_id]["reason"] == "smtp 550 mailbox unavailable"
        assert problems[failed_id]["channel"] == "sms"
        assert "client_id" not in problems[failed_id]
        flow = view["flow"]
        assert flow["window_total"]["clinic.visits"] >= 3
        recent = sum(flow["topics"]["clinic.notifications"][-3:])
        assert recent >= 2  # in the last minutes
        assert datetime.fromisoformat(flow["minutes"][-1]) <= now + timedelta(minutes=1)
        assert view["scope"]["location"] == {"id": location, "name": "Dashboard test"}
        # the only watched service does not answer: shown as down, not missing
        health = await until(lambda: _probed(http))
        assert health == [("intake", "127.0.0.1:9", False)]

    # a new process resumes from the offsets stored with the counts
    await publisher.publish([booked(location, client)])
    async with in_process_service(build_app, settings) as http:
        view = await until(lambda: _booked(http, location, 3))
        assert view["bookings"][location] == {"booked": 3, "waitlisted": 1}


async def _probed(http: httpx.AsyncClient) -> list[tuple[str, str, bool]] | None:
    view = (await http.get("/v1/overview", headers=OPS)).json()
    found = [(s["service"], s["instance"], s["ready"]) for s in view["services"]]
    return found or None


async def _booked(http: httpx.AsyncClient, location: str, n: int) -> dict[str, Any] | None:
    view = await overview(http, location)
    return view if view["bookings"].get(location, {}).get("booked") == n else None


async def test_rebuild_from_offset_zero_gives_the_same_counts(
    settings: DashboardSettings, publisher: Publisher, location: str
) -> None:
    client = f"c-{uuid.uuid4().hex[:8]}"
    await publisher.publish([booked(location, client), waitlisted(location, client)])
    keys = Keys(settings.redis_namespace, "dashboard")
    redis = connect(settings)
    store = DashboardStore(redis, keys)
    try:
        summary = await rebuild(settings, store, clock=parse_clock("system"), window_minutes=60)
        assert summary.records > 0
        assert await store.generation() == summary.generation
        bookings = (await store.read(summary.generation, [], None)).bookings
        assert bookings[f"{location}|booked"] == 1
        assert bookings[f"{location}|waitlisted"] == 1
        # a second rebuild replaces the first, whose keys are gone
        again = await rebuild(settings, store, clock=parse_clock("system"), window_minutes=60)
        assert again.generation > summary.generation
        assert (await store.read(again.generation, [], None)).bookings[f"{location}|booked"] == 1
        assert not [k async for k in redis.scan_iter(match=keys("g", str(summary.generation), "*"))]
        # the live projection carries on from where the rebuild ended
        async with in_process_service(build_app, settings) as http:
            await publisher.publish([booked(location, client)])
            view = await until(lambda: _booked(http, location, 2))
            assert view["bookings"][location]["waitlisted"] == 1
    finally:
        await redis.aclose()


async def test_dead_letter_inspected_and_replayed_once(
    settings: DashboardSettings, publisher: Publisher, location: str
) -> None:
    client = f"c-{uuid.uuid4().hex[:8]}"
    original = message(
        NotificationSent, location, client, due_at=datetime.now(UTC), sent_at=datetime.now(UTC)
    )
    raw = encode(original.envelope)
    failing = StreamProcessor(
        service="analytics",
        chain_id="northwest-nmt",
        locations=[location],
        handlers={},
        publisher=publisher,
        processed=None,  # type: ignore[arg-type]
        clock=parse_clock("system"),
    )
    record = RawRecord(
        topic="clinic.notifications", partition=0, offset=10**9, key=client.encode(), value=raw
    )
    dead = failing.dead_letter_event(record, "handler error: KeyError('kind')", original.envelope)
    await publisher.publish([dead])

    async with in_process_service(build_app, settings) as http:

        async def listed() -> dict[str, Any] | None:
            view = await overview(http, location)
            mine = [d for d in view["dead_letters"]["recent"] if d["id"] == dead.envelope.id]
            return mine[0] if mine else None

        entry = await until(listed)
        assert entry["source_topic"] == "clinic.notifications"
        assert entry["original_type"] == "notification.sent"
        assert entry["error"] == "handler error: KeyError('kind')"
        assert entry["replayed"] is None
        assert "payload" not in entry  # the list shows why, not what

        path = f"/v1/deadletters/{dead.envelope.id}"
        assert (await http.get(path, headers=FRONTDESK)).status_code == 403
        assert (await http.get("/v1/deadletters/nope", headers=OPS)).status_code == 404
        detail = (await http.get(path, headers=OPS)).json()
        assert detail["payload"] == json.loads(raw)
        assert detail["key"] == client

        assert (await http.post(f"{path}/replay", headers=OPS)).status_code == 403  # read-only
        # two admins at once: the record is sent once
        both = await asyncio.gather(
            http.post(f"{path}/replay", headers=ADMIN), http.post(f"{path}/replay", headers=ADMIN)
        )
        assert sorted(r.status_code for r in both) == [202, 409], [r.text for r in both]
        (replayed,) = [r for r in both if r.status_code == 202]
        where = replayed.json()["replayed"]
        assert where["topic"] == "clinic.notifications"
        again = await http.post(f"{path}/replay", headers=ADMIN)
        assert again.status_code == 409

        # the same bytes and key are on the topic at the offset the broker gave, with
        # the structured-mode header a CloudEvent is published with
        got = await _record_at(
            settings, "clinic.notifications", where["partition"], where["offset"]
        )
        assert got == (client.encode(), raw, (("content-type", STRUCTURED),))

        async def marked() -> dict[str, Any] | None:
            mine = await listed()
            return mine if mine and mine["replayed"] else None

        assert (await until(marked))["replayed"]["offset"] == where["offset"]

        # the replayed record flows through the topic into the dashboard like any other
        async def projected() -> dict[str, Any] | None:
            view = await overview(http, location)
            sent = [t for t in view["totals"] if t["type"] == "notification.sent"]
            return view if sent else None

        view = await until(projected)
        assert view["dead_letters"]["open"] == 0
        sent = [t for t in view["totals"] if t["type"] == "notification.sent"]
        assert sent == [{"topic": "clinic.notifications", "type": "notification.sent", "count": 1}]


async def test_who_may_see_what(settings: DashboardSettings, location: str) -> None:
    async with in_process_service(build_app, settings) as http:
        assert (await http.get("/v1/overview")).status_code == 401
        assert (await http.get("/v1/overview", headers=FRONTDESK)).status_code == 403
        assert (await http.get("/v1/overview", headers=OPS)).status_code == 200
        missing = await http.get("/v1/overview", params={"location": "atlantis"}, headers=OPS)
        assert missing.status_code == 404
        me = (await http.get("/v1/me", headers=ADMIN)).json()
        assert me["chain_wide"] and me["may_replay"]
        assert location in {loc["id"] for loc in me["locations"]}
        page = await http.get("/")
        assert page.status_code == 200 and "dashboard.js" in page.text
        assert (
            (await http.get("/static/dashboard.js"))
            .headers["content-type"]
            .startswith("text/javascript")
        )
        assert (await http.get("/static/..%2Fapi.py")).status_code == 404


async def test_live_updates_arrive_as_server_sent_events(
    settings: DashboardSettings, publisher: Publisher, location: str
) -> None:
    async with served(build_app, settings) as url, httpx.AsyncClient(base_url=url) as http:
        params = {"location": location}
        async with http.stream("GET", "/v1/stream", params=params, headers=OPS) as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            pictures = _pictures(live.aiter_lines())
            first = await asyncio.wait_for(anext(pictures), 30)
            assert {"flow", "lag", "dead_letters", "services", "waitlist"} <= set(first)
            assert first["bookings"] == {}
            await publisher.publish([booked(location, "c-live")])

            async def change() -> dict[str, Any]:
                async for picture in pictures:
                    if picture["bookings"]:
                        return picture
                raise AssertionError("the stream ended")

            changed = await asyncio.wait_for(change(), 30)
            assert changed["bookings"] == {location: {"booked": 1}}


async def _pictures(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    kind = None
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "overview":
            yield json.loads(line.removeprefix("data: "))


async def _record_at(
    settings: DashboardSettings, topic: str, partition: int, offset: int
) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        found = await consumer.getone()
        return found.key, found.value, tuple(found.headers)
    finally:
        await consumer.stop()


async def test_clinicflow_replay_command(
    settings: DashboardSettings, publisher: Publisher, location: str
) -> None:
    await publisher.publish([booked(location, "c-cli")])
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "CLINICFLOW_REDIS_NAMESPACE": settings.redis_namespace,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shared.cli", "replay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dashboard read model rebuilt: generation ")
    redis = connect(settings)
    try:
        store = DashboardStore(redis, Keys(settings.redis_namespace, "dashboard"))
        bookings = (await store.read(await store.generation(), [], None)).bookings
        assert bookings[f"{location}|booked"] == 1
    finally:
        await redis.aclose()
    unreachable = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shared.cli", "replay", "--redis", "redis://127.0.0.1:9/0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unreachable.returncode == 2
    assert "clinicflow: replay:" in unreachable.stderr


async def test_readiness_is_a_metric_too(settings: DashboardSettings) -> None:
    async with in_process_service(build_app, settings) as http:

        async def exposed() -> str | None:
            text = (await http.get("/metrics")).text
            return text if 'clinicflow_ready{check="all",service="dashboard"} 1.0' in text else None

        text = await until(exposed)
        assert 'clinicflow_ready{check="redis",service="dashboard"} 1.0' in text
        assert 'clinicflow_ready{check="broker",service="dashboard"} 1.0' in text


async def test_two_rebuilds_at_once_leave_the_newer_one_whole(
    settings: DashboardSettings, location: str
) -> None:
    redis = connect(settings)
    keys = Keys(settings.redis_namespace, "dashboard")
    store = DashboardStore(redis, keys)
    try:
        older, newer = await store.new_generation(), await store.new_generation()
        assert newer > older > await store.generation()
        for generation in (older, newer):
            await redis.hset(keys("g", str(generation), "bookings"), f"{location}|booked", 1)
        # the older one finishing first does not touch the newer one, still being built
        assert await store.switch_to(older)
        assert await redis.exists(keys("g", str(newer), "bookings"))
        assert await store.switch_to(newer)
        assert not await redis.exists(keys("g", str(older), "bookings"))
        # finishing late, an older rebuild is dropped rather than made current
        late = newer - 1
        await redis.hset(keys("g", str(late), "bookings"), f"{location}|booked", 1)
        assert not await store.switch_to(late)
        assert await store.generation() == newer
        assert not await redis.exists(keys("g", str(late), "bookings"))
        assert await redis.exists(keys("g", str(newer), "bookings"))
    finally:
        await redis.aclose()
