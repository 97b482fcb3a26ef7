"""The notifier's arming side against real Redis and the broker: a booking handled
before the client's intake waits for the contact (then goes on its channel, or is
suppressed no_contact_data when the wait ends), reminders missed by a lag go late
or are suppressed too_late, and a redelivered cause republishes the very bytes it
first published, with the clock moved or not."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.notifier.handlers import handlers
from services.notifier.waits import tend_waits
from shared.codec import wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData
from shared.events.visits import VisitRescheduled
from shared.infra import Infra
from shared.kafka import Outgoing
from tests.conftest import reminders_only_chain
from tests.integration.test_notifier_flow import (
    FRONT_DESK,
    START,
    VISIT,
    Notifier,
    intake,
    notifier_on,
    smtp_env,
    visit_for,
)
from tests.notifier_fakes import SmtpFake
from tests.support import TopicLog, until

pytestmark = pytest.mark.integration


def cause(data: EventData, *, at: datetime) -> Envelope:
    return wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="test",
        subject="s",
        trace=Trace(chainid="northwest-nmt", correlationid="s"),
        time=at,
    )


async def handle(n: Notifier, envelope: Envelope, data: EventData) -> list[Outgoing]:
    """What the notifier's consumer does with one record: handle it, publish the outputs."""
    out = list(await handlers(n.runtime, n.configured)[data.event_type](envelope, data))  # type: ignore[arg-type]
    await n.runtime.publisher.publish(out)
    return out


# the reminders' waits alone: the plan-change notices (tests/integration/test_notices.py)
# are switched off by policy
REMINDERS_ONLY = reminders_only_chain(Path(tempfile.mkdtemp(prefix="clinicflow-waits-")))


@asynccontextmanager
async def tended(infra: Infra, smtp: SmtpFake) -> AsyncIterator[Notifier]:
    """A notifier with its waits tended as its app does."""
    namespace = f"test-waits-{uuid.uuid4().hex[:8]}"
    chain = {"CLINICFLOW_CHAIN_CONFIG": str(REMINDERS_ONLY)}
    async with notifier_on(infra, namespace, **smtp_env(smtp), **chain) as n:
        task = asyncio.create_task(tend_waits(n.runtime, n.configured))  # type: ignore[arg-type]
        try:
            yield n
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def values(topics: TopicLog, client_id: str) -> dict[str, list[bytes]]:
    """Record values on clinic.notifications for one client, by event id."""
    found: dict[str, list[bytes]] = {}
    for record in topics.records:
        if record.topic == "clinic.notifications" and record.key == client_id:
            event_id = topics_id(record.value)
            found.setdefault(event_id, []).append(record.value)
    return found


def topics_id(value: bytes) -> str:
    return str(json.loads(value)["id"])


def of(topics: TopicLog, kind: str, client_id: str) -> list[dict[str, Any]]:
    return topics.for_client(kind, client_id)


async def test_a_booking_before_the_intake_waits_then_goes_on_the_contacts_channel(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("waits")
    who = client.client.client_id
    visit = visit_for(client)
    async with SmtpFake() as smtp, tended(infra, smtp) as n:
        booked = cause(visit, at=START)
        assert await handle(n, booked, visit) == []  # nothing known of the client: it waits
        assert await handle(n, booked, visit) == []  # redelivered: still just waiting
        assert await n.store.for_client(who) == []
        given = cause(client, at=START)
        assert await handle(n, given, client) == []  # the release goes through the outbox
        await topics.wait_for(lambda: len(of(topics, "notification.scheduled", who)) == 2)
        scheduled = of(topics, "notification.scheduled", who)
        assert {e["data"]["channel"] for e in scheduled} == {"email"}
        assert {e["data"]["offset"] for e in scheduled} == {"P2D", "PT2H"}
        assert set((await n.statuses(who)).values()) == {"scheduled"}

        await handle(n, given, client)  # the intake redelivered: nothing waits any more
        again = await handle(n, booked, visit)  # the booking redelivered: as announced
        await topics.wait_for(lambda: sum(len(v) for v in values(topics, who).values()) == 4)
        await topics.caught_up()
        by_id = values(topics, who)
        assert len(by_id) == 2  # two announcements, each published the same bytes
        assert all(len(set(copies)) == 1 for copies in by_id.values())
        assert {o.value for o in again} == {copies[0] for copies in by_id.values()}
        assert of(topics, "notification.suppressed", who) == []


async def test_a_visit_moved_while_its_reminders_wait_waits_at_its_new_time(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("moved")
    who = client.client.client_id
    visit = visit_for(client)
    moved_to = visit.start + timedelta(days=1)
    moved = VisitRescheduled(
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=who,
        location_id=visit.location_id,
        therapist_id=visit.therapist_id,
        room=visit.room,
        previous_start=visit.start,
        start=moved_to,
        end=moved_to + timedelta(hours=1),
        timezone=visit.timezone,
    )
    async with SmtpFake() as smtp, tended(infra, smtp) as n:
        assert await handle(n, cause(visit, at=START), visit) == []  # waits for the contact
        assert await handle(n, cause(moved, at=START), moved) == []  # its waits move with it
        await handle(n, cause(client, at=START), client)
        await topics.wait_for(lambda: len(of(topics, "notification.scheduled", who)) == 2)
        await topics.caught_up()
        scheduled = of(topics, "notification.scheduled", who)
        starts = {
            (await n.store.get(e["data"]["notification_id"]) or {})["context"]["visit_start"]
            for e in scheduled
        }
        assert starts == {moved_to.isoformat()}  # only the new time's reminders
        assert of(topics, "notification.suppressed", who) == []


async def test_without_an_intake_the_wait_ends_in_no_contact_data(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("nocontact")
    who = client.client.client_id
    visit = visit_for(client)
    async with SmtpFake() as smtp, tended(infra, smtp) as n:
        await handle(n, cause(visit, at=START), visit)
        n.clock.at = START + timedelta(minutes=4)  # within the wait (PT5M)
        await asyncio.sleep(0.5)
        assert of(topics, "notification.suppressed", who) == []
        n.clock.at = START + timedelta(minutes=6)
        await topics.wait_for(lambda: len(of(topics, "notification.suppressed", who)) == 2)
        suppressed = of(topics, "notification.suppressed", who)
        assert {e["data"]["reason"] for e in suppressed} == {"no_contact_data"}
        log = await n.http.get(f"/v1/clients/{who}/notifications", headers=FRONT_DESK)
        assert {v["reason"] for v in log.json()["notifications"]} == {"no_contact_data"}

        await handle(n, cause(client, at=n.clock.at), client)  # too late for those two
        await asyncio.sleep(0.5)
        await topics.caught_up()
        assert of(topics, "notification.scheduled", who) == []
        assert len(of(topics, "notification.suppressed", who)) == 2


async def test_opted_in_without_an_address_is_suppressed_at_once(infra: Infra) -> None:
    client = intake("noaddress")
    client = client.model_copy(update={"client": client.client.model_copy(update={"email": None})})
    visit = visit_for(client)
    async with SmtpFake() as smtp, tended(infra, smtp) as n:
        await handle(n, cause(client, at=START), client)
        out = await handle(n, cause(visit, at=START), visit)
        assert [(o.envelope.type, o.envelope.data["reason"]) for o in out] == [
            ("notification.suppressed", "no_contact_data")
        ] * 2


async def test_a_booking_handled_after_a_reminders_time_goes_late_or_too_late(
    infra: Infra, topics: TopicLog
) -> None:
    far, near = intake("late"), intake("toolate")
    async with SmtpFake() as smtp, tended(infra, smtp) as n:
        for client in (far, near):
            await handle(n, cause(client, at=START), client)
        # booked before the two-day reminder was due, handled a day after it (a lag)
        n.clock.at = VISIT - timedelta(days=1)
        late = await handle(n, cause(visit_for(far), at=START), visit_for(far))
        by_offset = {o.envelope.data["offset"]: o.envelope.data for o in late}
        assert by_offset["P2D"]["planned_due_at"] == "2027-03-13T17:00:00Z"
        assert datetime.fromisoformat(by_offset["P2D"]["due_at"]) == n.clock.at
        assert "planned_due_at" not in by_offset["PT2H"]  # still on time
        await until(lambda: _sent(n, far.client.client_id, by_offset["P2D"]["notification_id"]))
        # handled half an hour before the visit: nothing can still help
        n.clock.at = VISIT - timedelta(minutes=30)
        gone = await handle(n, cause(visit_for(near), at=START), visit_for(near))
        assert [(o.envelope.type, o.envelope.data["reason"]) for o in gone] == [
            ("notification.suppressed", "too_late")
        ] * 2

        far_log = await n.http.get(
            f"/v1/clients/{far.client.client_id}/notifications", headers=FRONT_DESK
        )
        shown = {v["offset"]: v for v in far_log.json()["notifications"]}
        assert shown["P2D"]["planned_due_at"] is not None and shown["P2D"]["status"] in {
            "scheduled",
            "sent",
        }
        near_log = await n.http.get(
            f"/v1/clients/{near.client.client_id}/notifications", headers=FRONT_DESK
        )
        assert {v["reason"] for v in near_log.json()["notifications"]} == {"too_late"}
        assert len(smtp.received) >= 1  # the late one went out


async def _sent(n: Notifier, client_id: str, notification_id: str) -> bool:
    return (await n.statuses(client_id)).get(notification_id) == "sent"


async def test_a_redelivered_booking_with_the_clock_moved_republishes_the_same_bytes(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("bytes")
    who = client.client.client_id
    visit = visit_for(client)
    async with SmtpFake() as smtp, tended(infra, smtp) as n:
        await handle(n, cause(client, at=START), client)
        booked = cause(visit, at=START)
        first = await handle(n, booked, visit)
        n.clock.at = START + timedelta(hours=13)  # now inside quiet hours: due times would move
        again = await handle(n, booked, visit)
        assert [o.value for o in again] == [o.value for o in first]
        await topics.wait_for(lambda: sum(len(v) for v in values(topics, who).values()) == 4)
        by_id = values(topics, who)
        assert len(by_id) == 2 and all(len(set(copies)) == 1 for copies in by_id.values())
