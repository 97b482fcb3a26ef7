"""Nothing accepted is lost, and nothing refused is published, whatever the broker does.

An accepted intake is stored in Redis with its ``intake.submitted`` in the outbox
before the 202 (shared/outbox.py); the relay publishes what the broker did not take
at once. These tests run the intake app against a broker of its own (never the
session's) and prove, from the topic:

* with the broker unreachable (a TCP proxy in between, cut), a session submit and
  ``POST /v1/intakes`` still answer 202 within the bounded publish wait; a repeat
  (same session, same Idempotency-Key, or the same document without a key)
  answers the same intake; the outbox gauge shows the backlog; once the broker is
  reachable again each intake is on the topic as exactly one event,
  byte-identical wherever repeated;
* with the connection cut by a TCP proxy while submits are in flight, every 202
  has exactly one event on the topic and every 503 none.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.app import build_app
from services.intake.docs import INTAKE_EXAMPLE
from shared.infra import Infra, embedded_broker, free_port
from shared.kafka import ensure_topics
from tests.support import TopicLog, in_process_service, intake_settings
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
PUBLISH_WAIT_S = 1.0
SEND_TIMEOUT_S = 2.0
ANSWERED_WITHIN_S = PUBLISH_WAIT_S + 2.0  # the bounded wait, and the request's own work
RECOVERY_DEADLINE_S = 30.0

COMPLAINT = {"region": "neck", "side": "left", "intensity": 5, "onset": "2026-09-01"}


async def start_broker(
    stack: ExitStack, port: int, workdir: Path, *, advertised_port: int | None = None
) -> str:
    """Start a broker on ``port`` held by ``stack``, with the public topics.

    ``embedded_broker`` probes the broker with ``asyncio.run``, so it is entered
    from a worker thread, not from the running event loop."""

    def started() -> str:
        workdir.mkdir(parents=True, exist_ok=True)
        return stack.enter_context(embedded_broker(port, workdir, advertised_port=advertised_port))

    bootstrap = await asyncio.to_thread(started)
    await ensure_topics(bootstrap)
    return bootstrap


async def timed(send: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = await send
    return answer, time.monotonic() - started


def document_for(email: str) -> dict[str, Any]:
    return {**INTAKE_EXAMPLE, "client": {**INTAKE_EXAMPLE["client"], "email": email, "phone": None}}


def events_by_id(log: TopicLog, correlation: str) -> dict[str, set[bytes]]:
    """The ``intake.submitted`` records of one intake: event id -> the distinct values."""
    found: dict[str, set[bytes]] = defaultdict(set)
    for record in log.records:
        if record.topic != "clinic.intake" or record.value is None:
            continue
        try:
            event = json.loads(record.value)
        except (ValueError, RecursionError):
            continue
        if event.get("type") == "intake.submitted" and event.get("correlationid") == correlation:
            found[event["id"]].add(record.value)
    return found


def assert_one_event(log: TopicLog, correlation: str) -> dict[str, Any]:
    """Exactly one event for the intake; a record repeated by the relay is byte-identical."""
    found = events_by_id(log, correlation)
    assert len(found) == 1, f"{correlation}: {len(found)} distinct events"
    [(event_id, values)] = found.items()
    assert len(values) == 1, f"{event_id} was republished with other bytes"
    return next(iter(log.events(id=event_id)))


def settings_for(infra: Infra, namespace: str, bootstrap: str) -> Any:
    """A namespace of the test's own: an outbox shared with the run's other intake
    apps would be relayed by them to the run's broker, not this test's."""
    return intake_settings(
        infra,
        f"{namespace}-{uuid.uuid4().hex[:6]}",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        INTAKE_PUBLISH_WAIT_S=PUBLISH_WAIT_S,
    )


async def test_an_intake_accepted_while_the_broker_is_unreachable_reaches_it_once(
    infra: Infra, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # read by the nested KafkaTuning settings, so it must be set before they are built
    monkeypatch.setenv("KAFKA_SEND_TIMEOUT_S", str(SEND_TIMEOUT_S))
    broker_port = free_port()
    proxy = await TcpProxy("127.0.0.1", broker_port).start()
    with ExitStack() as broker:
        await start_broker(broker, broker_port, tmp_path, advertised_port=proxy.port)
        settings = settings_for(infra, namespace, proxy.address)
        async with in_process_service(build_app, settings) as http:
            created = await http.post(
                "/v1/intake-sessions", json={"location_id": "beaverton"}, headers=FRONT_DESK
            )
            assert created.status_code == 201, created.text
            url = f"/v1/intake-sessions/{created.json()['session_id']}"
            client = {"name": "Kim Outage", "email": f"kim-{uuid.uuid4().hex[:8]}@example.com"}
            for section in (
                {"client": client},
                {"complaints": [COMPLAINT]},
                {"health": {}},
                {"consent": {"treatment": True}},
            ):
                patched = await http.patch(url, json=section, headers=FRONT_DESK)
                assert patched.status_code == 200, patched.text
            before = (await http.get(url, headers=FRONT_DESK)).json()
            keyed_document = document_for(f"jo-{uuid.uuid4().hex[:8]}@example.com")
            keyless_document = document_for(f"al-{uuid.uuid4().hex[:8]}@example.com")
            keyed = {**FRONT_DESK, "Idempotency-Key": f"outage-{uuid.uuid4().hex}"}

            def submit() -> Awaitable[httpx.Response]:
                return http.post(f"{url}/submit", headers=FRONT_DESK)

            def post(
                document: dict[str, Any], headers: dict[str, str]
            ) -> Awaitable[httpx.Response]:
                return http.post("/v1/intakes", json=document, headers=headers)

            # -- the broker becomes unreachable; the app keeps running and keeps accepting
            await proxy.cut()

            answers = []
            for send in (submit, lambda: post(keyed_document, keyed)):
                accepted, elapsed = await timed(send())
                assert accepted.status_code == 202, accepted.text
                assert elapsed < ANSWERED_WITHIN_S, f"202 took {elapsed:.1f} s"
                answers.append(accepted.json())
            keyless, _ = await timed(post(keyless_document, FRONT_DESK))
            assert keyless.status_code == 202, keyless.text
            answers.append(keyless.json())
            session_answer, keyed_answer, keyless_answer = answers

            view = (await http.get(url, headers=FRONT_DESK)).json()
            assert view["state"] == "submitted" and view["submission"] == session_answer
            assert view["draft"] == before["draft"]
            # every kind of repeat answers the same intake, broker or not
            assert (await submit()).json() == session_answer
            assert (await post(keyed_document, keyed)).json() == keyed_answer
            assert (await post(keyless_document, FRONT_DESK)).json() == keyless_answer
            assert len({a["intake_id"] for a in answers}) == 3

            async def waiting() -> float:
                text = (await http.get("/metrics")).text
                for line in text.splitlines():
                    if line.startswith('clinicflow_outbox_pending{service="intake"}'):
                        return float(line.split()[-1])
                return 0.0

            deadline = time.monotonic() + 10
            while await waiting() < 3:
                assert time.monotonic() < deadline, "the outbox gauge never showed the backlog"
                await asyncio.sleep(0.1)

            # -- the broker is reachable again; the relay empties the outbox
            log = await TopicLog(f"127.0.0.1:{broker_port}").start()
            await proxy.restore()
            try:
                for answer in answers:
                    await log.wait_for(
                        lambda a=answer: events_by_id(log, a["intake_id"]),
                        timeout=RECOVERY_DEADLINE_S,
                    )
                await log.caught_up()
                for answer, email in zip(
                    answers,
                    (
                        client["email"],
                        keyed_document["client"]["email"],
                        keyless_document["client"]["email"],
                    ),
                    strict=True,
                ):
                    event = assert_one_event(log, answer["intake_id"])
                    assert event["data"]["client"]["client_id"] == answer["client_id"]
                    assert event["data"]["client"]["email"] == email
                    assert event["data"]["findings"] == answer["findings"]
                deadline = time.monotonic() + 10
                while await waiting() > 0:
                    assert time.monotonic() < deadline, "the outbox gauge never emptied"
                    await asyncio.sleep(0.1)
            finally:
                await log.stop()
                await proxy.stop()


async def test_a_broker_cut_during_submits_leaves_one_event_per_202_and_none_per_503(
    infra: Infra, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SEND_TIMEOUT_S", str(SEND_TIMEOUT_S))
    broker_port = free_port()
    proxy = await TcpProxy("127.0.0.1", broker_port).start()
    marker = uuid.uuid4().hex[:8]
    with ExitStack() as broker:
        await start_broker(broker, broker_port, tmp_path, advertised_port=proxy.port)
        log = await TopicLog(f"127.0.0.1:{broker_port}").start()
        try:
            async with in_process_service(
                build_app, settings_for(infra, namespace, proxy.address)
            ) as http:
                outcomes: list[tuple[int, dict[str, Any]]] = []

                async def submitter(worker: int, count: int) -> None:
                    for n in range(count):
                        email = f"cut-{marker}-{worker}-{n}@example.com"
                        answer = await http.post(
                            "/v1/intakes", json=document_for(email), headers=FRONT_DESK
                        )
                        assert answer.status_code in (202, 503), answer.text
                        outcomes.append((answer.status_code, answer.json()))
                        for threshold, reached in milestones.items():
                            if len(outcomes) >= threshold:
                                reached.set()

                # cut after 8 answers, restore after 24: submits are in flight at both
                milestones = {8: asyncio.Event(), 24: asyncio.Event()}

                async def partition() -> None:
                    await milestones[8].wait()
                    await proxy.cut()
                    await milestones[24].wait()
                    await proxy.restore()

                await asyncio.wait_for(
                    asyncio.gather(partition(), *(submitter(w, 10) for w in range(4))),
                    timeout=120,
                )
                assert proxy.cut_count == 1
                accepted = [body["intake_id"] for status, body in outcomes if status == 202]
                print(f"\n{len(accepted)} x 202, {len(outcomes) - len(accepted)} x 503")
                for intake_id in accepted:
                    await log.wait_for(
                        lambda i=intake_id: events_by_id(log, i), timeout=RECOVERY_DEADLINE_S
                    )
                await log.caught_up()
                for intake_id in accepted:
                    assert_one_event(log, intake_id)
                ours = {
                    event["correlationid"]
                    for event in log.events(type="intake.submitted")
                    if event["data"]["client"].get("email", "").startswith(f"cut-{marker}-")
                }
                assert ours == set(accepted), (
                    "an intake answered 503 (or never answered) is on the topic"
                )
        finally:
            await log.stop()
            await proxy.stop()
