"""Nothing accepted is lost while the broker is down.

The intake service answers 202 only once the broker acknowledged
``intake.submitted``. This module runs the intake app against a broker of its
own (never the session's), stops that broker, and proves:

* a session submit answers 503 quickly (within the send timeout plus the
  publisher's margin), with a clear ``detail`` and a ``Retry-After`` header,
  and the draft stays a complete, untouched draft ready for a retry;
* ``POST /v1/intakes`` with an ``Idempotency-Key`` answers 503 too;
* once the broker is back (on the same port, topics created anew - it keeps
  nothing across a restart) the producer reconnects by itself, the same
  requests answer 202, and each intake is on the topic exactly once: the send
  that failed while the broker was down was not delivered later by a retry in
  the Kafka client, so a 503 really means "not accepted".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.app import build_app
from services.intake.docs import INTAKE_EXAMPLE
from shared.infra import Infra, embedded_broker, free_port
from shared.kafka import SEND_TIMEOUT_MARGIN_S, ensure_topics
from tests.support import TopicLog, in_process_service, intake_settings

pytestmark = pytest.mark.integration

FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
SEND_TIMEOUT_S = 2.0
# the publisher's backstop fires at send timeout + margin; allow a little for the rest
UNAVAILABLE_WITHIN_S = SEND_TIMEOUT_S + SEND_TIMEOUT_MARGIN_S + 1.0
RECOVERY_DEADLINE_S = 30.0

COMPLAINT = {"region": "neck", "side": "left", "intensity": 5, "onset": "2026-09-01"}


async def start_broker(stack: ExitStack, port: int, workdir: Path) -> str:
    """Start a broker on ``port`` held by ``stack``, with the public topics.

    ``embedded_broker`` probes the broker with ``asyncio.run``, so it is entered
    from a worker thread, not from the running event loop."""

    def started() -> str:
        workdir.mkdir(parents=True, exist_ok=True)
        return stack.enter_context(embedded_broker(port, workdir))

    bootstrap = await asyncio.to_thread(started)
    await ensure_topics(bootstrap)
    return bootstrap


async def until_accepted(
    send: Callable[[], Awaitable[httpx.Response]], *, timeout: float = RECOVERY_DEADLINE_S
) -> tuple[httpx.Response, int]:
    """Retry ``send`` until it answers 202; the answer and how many 503s came first."""
    deadline = time.monotonic() + timeout
    unavailable = 0
    while True:
        answer = await send()
        if answer.status_code == 202:
            return answer, unavailable
        assert answer.status_code == 503, answer.text
        unavailable += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"still 503 after {timeout:.0f} s: {answer.text}")
        await asyncio.sleep(0.2)


async def timed(send: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = await send
    return answer, time.monotonic() - started


def assert_unavailable(answer: httpx.Response, elapsed: float) -> None:
    assert answer.status_code == 503, answer.text
    assert "broker did not confirm" in answer.json()["detail"]
    assert "retry" in answer.json()["detail"]
    assert int(answer.headers["Retry-After"]) > 0
    assert elapsed < UNAVAILABLE_WITHIN_S, f"503 took {elapsed:.1f} s"


async def test_nothing_accepted_is_lost_while_the_broker_is_down(
    infra: Infra, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # read by the nested KafkaTuning settings, so it must be set before they are built
    monkeypatch.setenv("KAFKA_SEND_TIMEOUT_S", str(SEND_TIMEOUT_S))
    port = free_port()
    with ExitStack() as broker:
        bootstrap = await start_broker(broker, port, tmp_path / "before")
        async with in_process_service(
            build_app, intake_settings(infra, namespace, KAFKA_BOOTSTRAP_SERVERS=bootstrap)
        ) as http:
            # -- a complete draft, and a whole document for POST /v1/intakes
            created = await http.post(
                "/v1/intake-sessions", json={"location_id": "beaverton"}, headers=FRONT_DESK
            )
            assert created.status_code == 201, created.text
            session = created.json()["session_id"]
            url = f"/v1/intake-sessions/{session}"
            client = {"name": "Kim Outage", "email": f"kim-{uuid.uuid4().hex[:8]}@example.com"}
            sections: list[dict[str, Any]] = [
                {"client": client},
                {"complaints": [COMPLAINT]},
                {"health": {}},
                {"consent": {"treatment": True}},
            ]
            for section in sections:
                patched = await http.patch(url, json=section, headers=FRONT_DESK)
                assert patched.status_code == 200, patched.text
            before = (await http.get(url, headers=FRONT_DESK)).json()
            assert before["complete"] is True and before["state"] == "draft"

            document = {
                **INTAKE_EXAMPLE,
                "client": {
                    **INTAKE_EXAMPLE["client"],
                    "email": f"jo-{uuid.uuid4().hex[:8]}@example.com",
                    "phone": None,
                },
            }
            keyed = {**FRONT_DESK, "Idempotency-Key": f"outage-{uuid.uuid4().hex}"}

            def submit() -> Awaitable[httpx.Response]:
                return http.post(f"{url}/submit", headers=FRONT_DESK)

            def post_document() -> Awaitable[httpx.Response]:
                return http.post("/v1/intakes", json=document, headers=keyed)

            # -- the broker goes away; the app keeps running
            await asyncio.to_thread(broker.close)

            refused, elapsed = await timed(submit())
            assert_unavailable(refused, elapsed)
            print(f"\nsession submit: 503 after {elapsed:.2f} s")

            after = (await http.get(url, headers=FRONT_DESK)).json()
            assert after["state"] == "draft"
            assert after["complete"] is True and after["missing"] == []
            assert after["draft"] == before["draft"]
            assert after["section_revisions"] == before["section_revisions"]
            assert after["revision"] == before["revision"]
            assert after["submission"] is None

            refused, elapsed = await timed(post_document())
            assert_unavailable(refused, elapsed)
            print(f"POST /v1/intakes: 503 after {elapsed:.2f} s")

            # -- the broker comes back on the same port, empty
            down_at = time.monotonic()
            assert await start_broker(broker, port, tmp_path / "after") == bootstrap
            print(f"broker back after {time.monotonic() - down_at:.2f} s")
            log = await TopicLog(bootstrap).start()
            try:
                recovering = time.monotonic()
                accepted, retries = await until_accepted(submit)
                print(
                    f"session submit: 202 {time.monotonic() - recovering:.2f} s after the "
                    f"restart ({retries} more 503s)"
                )
                answer = accepted.json()
                intake_id = answer["intake_id"]

                view = (await http.get(url, headers=FRONT_DESK)).json()
                assert view["state"] == "submitted"
                assert view["submission"] == answer
                assert view["draft"] == before["draft"]
                again = await submit()
                assert again.status_code == 202, again.text
                assert again.json() == answer

                # POST /v1/intakes: the retry with the same key is handled afresh
                document_accepted, _ = await until_accepted(post_document)
                document_answer = document_accepted.json()
                replay = await post_document()
                assert replay.status_code == 202 and replay.json() == document_answer
                assert document_answer["intake_id"] != intake_id

                # Both 503'd sends used the same key (client) as their retries, so the
                # same partition: had the client kept the failed batch to deliver later, it
                # would be on the topic ahead of the retry that was just acknowledged.
                def published(correlation: str) -> Callable[[], list[dict[str, Any]]]:
                    return lambda: log.events(type="intake.submitted", correlationid=correlation)

                for correlation in (intake_id, document_answer["intake_id"]):
                    await log.wait_for(published(correlation), timeout=RECOVERY_DEADLINE_S)
                await log.caught_up()
                submitted = log.events(type="intake.submitted", correlationid=intake_id)
                assert len(submitted) == 1, submitted
                assert submitted[0]["data"]["client"]["client_id"] == answer["client_id"]
                assert submitted[0]["data"]["client"]["email"] == client["email"]
                assert submitted[0]["data"]["findings"] == answer["findings"]
                documented = log.events(
                    type="intake.submitted", correlationid=document_answer["intake_id"]
                )
                assert len(documented) == 1, documented
                assert documented[0]["data"]["client"]["email"] == document["client"]["email"]
            finally:
                await log.stop()
