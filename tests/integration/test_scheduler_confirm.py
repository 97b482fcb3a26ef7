"""Confirming a visit against the run's broker and Redis: from a front desk key
(via staff), from a message's signed link (via link), or from a text reply
(``reply.received`` on clinic.notifications, via sms). Once per visit and start,
published on clinic.visits as ``visit.confirmed``, shown as ``confirmed`` by the
client's visits and the day's calendar until the visit moves."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.scheduler.handlers import handlers
from shared import links
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import VisitBooked
from shared.events.notifications import ReplyReceived
from shared.kafka import Outgoing
from shared.runtime import stream_processor
from shared.streams import Rejected
from tests.integration.test_scheduler_makeup import raw, the_record
from tests.integration.test_scheduler_visits import (  # noqa: F401 (the fixture)
    ADMIN,
    BROOKLYN,
    FRONT_DESK,
    LINKS_UNTIL,
    START,
    Scheduler,
    a_plan,
    booked,
    scheduler,
    visits_of,
)
from tests.support import TopicLog

pytestmark = pytest.mark.integration


def confirmations(topics: TopicLog, visit_id: str) -> list[dict[str, Any]]:
    return [e for e in topics.events(type="visit.confirmed") if e["subject"] == visit_id]


def link(at: Scheduler, visit_id: str) -> str:
    secret = at.runtime.base.settings.link_secret.get_secret_value()
    return links.sign(secret, "visit", visit_id, expires=LINKS_UNTIL)


async def day_status(at: Scheduler, visit: VisitBooked) -> str:
    """The visit's status on its day's calendar."""
    day = visit.start.astimezone(at.runtime.chain.location(visit.location_id).zone).date()
    answer = await at.http.get(
        f"/v1/locations/{visit.location_id}/calendar",
        params={"date": day.isoformat()},
        headers=FRONT_DESK,
    )
    assert answer.status_code == 200, answer.text
    shown = {v["visit_id"]: v for room in answer.json()["rooms"] for v in room["visits"]}
    return str(shown[visit.visit_id]["status"])


async def test_the_front_desk_confirms_once_per_start_and_the_views_show_it(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    plan = a_plan("confirm-desk")
    visits = booked(await scheduler.receive(plan))
    visit = visits[0]
    path = f"/v1/visits/{visit.visit_id}/confirm"
    assert await day_status(scheduler, visit) == "booked"

    answer = await scheduler.http.post(path, headers=FRONT_DESK)
    assert answer.status_code == 202, answer.text
    data = answer.json()["data"]
    assert answer.json()["event_type"] == "visit.confirmed"
    assert (data["via"], data["plan_id"]) == ("staff", plan.plan_id)
    assert datetime.fromisoformat(data["start"]) == visit.start
    again = await scheduler.http.post(path, headers=ADMIN)
    assert again.status_code == 200 and again.json() == answer.json()  # the first result
    hidden = await scheduler.http.post(path, headers=BROOKLYN)
    assert hidden.status_code == 404

    shown = await visits_of(scheduler, plan.client_id)
    assert shown[visit.visit_id]["status"] == "confirmed"
    assert {shown[v.visit_id]["status"] for v in visits[1:]} == {"booked"}
    assert await day_status(scheduler, visit) == "confirmed"
    (first,) = await topics.wait_for(lambda: confirmations(topics, visit.visit_id))
    assert first["correlationid"] == plan.plan_id  # in the story of the booking

    # moved: booked again until confirmed at the new start
    moved = await scheduler.http.post(
        f"/v1/visits/{visit.visit_id}/reschedule", json={}, headers=FRONT_DESK
    )
    assert moved.status_code == 202, moved.text
    new_start = datetime.fromisoformat(moved.json()["data"]["start"])
    assert (await visits_of(scheduler, plan.client_id))[visit.visit_id]["status"] == "booked"
    moved_visit = visit.model_copy(update={"start": new_start})
    assert await day_status(scheduler, moved_visit) == "booked"
    second = await scheduler.http.post(path, headers=FRONT_DESK)
    assert second.status_code == 202, second.text
    assert datetime.fromisoformat(second.json()["data"]["start"]) == new_start
    assert await day_status(scheduler, moved_visit) == "confirmed"
    both = await topics.wait_for(
        lambda: found if len(found := confirmations(topics, visit.visit_id)) == 2 else None
    )
    assert len({e["id"] for e in both}) == 2
    await topics.caught_up()
    assert len(confirmations(topics, visit.visit_id)) == 2


async def test_a_signed_link_confirms_via_link_and_no_longer_acts_once_cancelled(
    scheduler: Scheduler,  # noqa: F811
) -> None:
    visits = booked(await scheduler.receive(a_plan("confirm-link")))
    first, second = visits[0], visits[1]
    path = f"/v1/visits/{first.visit_id}/confirm"

    assert (await scheduler.http.post(path)).status_code == 401
    forged = await scheduler.http.post(path, params={"sig": link(scheduler, second.visit_id)})
    assert forged.status_code == 401
    answer = await scheduler.http.post(path, params={"sig": link(scheduler, first.visit_id)})
    assert answer.status_code == 202, answer.text
    assert answer.json()["data"]["via"] == "link"

    cancelled = await scheduler.http.post(
        f"/v1/visits/{second.visit_id}/cancel", json={"by": "client"}, headers=FRONT_DESK
    )
    assert cancelled.status_code == 202
    gone = await scheduler.http.post(
        f"/v1/visits/{second.visit_id}/confirm", params={"sig": link(scheduler, second.visit_id)}
    )
    assert gone.status_code == 410
    refused = await scheduler.http.post(f"/v1/visits/{second.visit_id}/confirm", headers=FRONT_DESK)
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]


async def test_a_visit_that_started_or_took_place_is_not_confirmed(
    scheduler: Scheduler,  # noqa: F811
) -> None:
    visits = booked(await scheduler.receive(a_plan("confirm-late")))
    done, started = visits[0], visits[1]
    confirmed = await scheduler.http.post(f"/v1/visits/{done.visit_id}/confirm", headers=ADMIN)
    assert confirmed.status_code == 202

    scheduler.clock.at = done.start + timedelta(minutes=50)
    completed = await scheduler.http.post(
        f"/v1/visits/{done.visit_id}/complete",
        json={"pain_before": 6, "pain_after": 3},
        headers=ADMIN,
    )
    assert completed.status_code == 202, completed.text
    # the first confirmation no longer stands: not answered again
    again = await scheduler.http.post(f"/v1/visits/{done.visit_id}/confirm", headers=ADMIN)
    assert again.status_code == 409 and "completed" in again.json()["detail"]
    assert (await visits_of(scheduler, done.client_id))[done.visit_id]["status"] == "completed"

    scheduler.clock.at = started.start + timedelta(minutes=1)
    late = await scheduler.http.post(f"/v1/visits/{started.visit_id}/confirm", headers=ADMIN)
    assert late.status_code == 409 and "started" in late.json()["detail"]


def reply(visit: VisitBooked, *, client_id: str | None = None) -> ReplyReceived:
    return ReplyReceived(
        reply_id=f"SM{uuid.uuid4().hex}",
        client_id=client_id or visit.client_id,
        location_id=visit.location_id,
        channel="sms",
        intent="confirm",
        visit_id=visit.visit_id,
        received_at=START,
    )


def as_notifier(event: ReplyReceived) -> Outgoing:
    envelope = wrap(
        event,
        event_id=str(uuid.uuid4()),
        service="notifier",
        subject=event.reply_id,
        trace=Trace(chainid="northwest-nmt", correlationid=event.reply_id),
        time=START,
    )
    return Outgoing(key=event.client_id, envelope=envelope)


async def test_a_text_reply_confirms_via_sms_once_through_the_topic(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    plan = a_plan("confirm-sms")
    visits = booked(await scheduler.receive(plan))
    visit, gone, other = visits[0], visits[1], booked(await scheduler.receive(a_plan("other")))[0]
    texted = as_notifier(reply(visit))
    await scheduler.runtime.publisher.publish([texted])
    record = await the_record(topics, "reply.received", texted.envelope.subject)

    consumer = stream_processor(scheduler.runtime, handlers(scheduler.runtime))
    await consumer.process_batch([raw(record)])
    (confirmed,) = await topics.wait_for(lambda: confirmations(topics, visit.visit_id))
    assert confirmed["data"]["via"] == "sms"
    assert (await visits_of(scheduler, plan.client_id))[visit.visit_id]["status"] == "confirmed"

    # redelivered, or handled again past the consumer's dedupe: nothing more
    await consumer.process_batch([raw(record)])
    handle = handlers(scheduler.runtime)["reply.received"]
    assert await handle(texted.envelope, reply(visit)) == []

    # a visit cancelled since the text is skipped without an error
    cancel = await scheduler.http.post(
        f"/v1/visits/{gone.visit_id}/cancel", json={"by": "client"}, headers=FRONT_DESK
    )
    assert cancel.status_code == 202
    assert await handle(texted.envelope, reply(gone)) == []
    # a reply that names another client's visit is refused (dead letter)
    with pytest.raises(Rejected):
        await handle(texted.envelope, reply(other, client_id=plan.client_id))
    # intents other than confirm are the notifier's business
    other_intent = reply(visit).model_copy(update={"intent": "help", "visit_id": None})
    assert await handle(texted.envelope, other_intent) == []

    await topics.caught_up()
    assert len(confirmations(topics, visit.visit_id)) == 1
    assert confirmations(topics, gone.visit_id) == []
    assert confirmations(topics, other.visit_id) == []
