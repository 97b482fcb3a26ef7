"""An accepted visit command is not lost while the broker is down.

The scheduler answers a command once the calendar change and its event are
written together (the outbox); the event is published right away when the
broker answers, else by the relay once it does. This module runs the scheduler
against a broker of its own, stops it, cancels a visit, and proves the answer
is 202, the calendar shows the cancel, the event waits in the outbox, and the
relay puts ``visit.cancelled`` on the topic once the broker is back - under the
id the outbox held, once.

The relay is started only after the broker is back with its topics: the
embedded broker keeps nothing across a restart, and a send that reaches it in
the instant before its topics are created again is acknowledged and dropped.
Apache Kafka keeps its topics across a restart, so that window is an artefact
of the test broker, not something the relay must survive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from services.scheduler.outbox import relay
from services.scheduler.store import CalendarStore
from shared.infra import Infra, free_port
from shared.kafka import SEND_TIMEOUT_MARGIN_S
from tests.integration.test_intake_broker_down import start_broker
from tests.integration.test_scheduler_visits import (
    FRONT_DESK,
    a_plan,
    booked,
    scheduler_on,
    visits_of,
)
from tests.support import TopicLog

pytestmark = pytest.mark.integration

SEND_TIMEOUT_S = 2.0
RECOVERY_DEADLINE_S = 30.0


async def test_a_cancel_accepted_while_the_broker_is_down_is_published_once_it_is_back(
    infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SEND_TIMEOUT_S", str(SEND_TIMEOUT_S))
    port = free_port()
    with ExitStack() as broker:
        bootstrap = await start_broker(broker, port, tmp_path / "before")
        async with scheduler_on(infra, bootstrap, relaying=False) as scheduler:
            plan = a_plan("outage")
            visit = booked(await scheduler.receive(plan))[0]
            store = CalendarStore(scheduler.runtime.redis, scheduler.runtime.keys)

            await asyncio.to_thread(broker.close)
            started = time.monotonic()
            answer = await scheduler.http.post(
                f"/v1/visits/{visit.visit_id}/cancel",
                json={"by": "client", "reason": "flu"},
                headers=FRONT_DESK,
            )
            elapsed = time.monotonic() - started
            assert answer.status_code == 202, answer.text
            assert elapsed < SEND_TIMEOUT_S + SEND_TIMEOUT_MARGIN_S + 1.0, elapsed
            shown = await visits_of(scheduler, plan.client_id)
            assert shown[visit.visit_id]["status"] == "cancelled"
            pending = await store.pending_outbox()
            assert len(pending) == 1  # the event waits for the broker
            event_id = pending[0][0]

            assert await start_broker(broker, port, tmp_path / "after") == bootstrap
            log = await TopicLog(bootstrap).start()
            relaying = asyncio.create_task(relay(scheduler.runtime))
            try:
                published = await log.wait_for(
                    lambda: log.events(type="visit.cancelled", subject=visit.visit_id),
                    timeout=RECOVERY_DEADLINE_S,
                )
                assert published[0]["id"] == event_id
                assert published[0]["data"] == answer.json()["data"]

                deadline = time.monotonic() + RECOVERY_DEADLINE_S
                while await store.pending_outbox():  # delivered, then marked
                    assert time.monotonic() < deadline, "the outbox never emptied"
                    await asyncio.sleep(0.05)
                await log.caught_up()
                assert [e["id"] for e in log.events(type="visit.cancelled")] == [event_id]
            finally:
                relaying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relaying
                await log.stop()
