"""Booking confirmations and change notices against real Redis, the broker and an SMTP
server: a plan's visits make one confirmation, a revision and the visits it moves
make one notice whatever order they come in, a quick undo sends nothing, a notice
being sent takes no more changes, the client's own cancel and a kind switched off
by policy send nothing, and a redelivered event joins nothing twice."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.notifier.handlers import handlers
from shared.envelope import Envelope
from shared.events import EventData, PlanRevised
from shared.events.plans import PlanCompleted
from shared.events.visits import (
    BookingWaitlisted,
    VisitBooked,
    VisitCancelled,
    VisitRescheduled,
    WaitlistOffered,
)
from shared.infra import Infra
from shared.streams import Batched
from shared.vocabulary import CancelCause, CancelledBy
from tests.conftest import demo_chain_with
from tests.integration.test_notifier_flow import (
    START,
    VISIT,
    Notifier,
    body_of,
    intake,
    notifier_on,
    smtp_env,
    visit_for,
)
from tests.integration.test_notifier_waits import cause, handle
from tests.notifier_fakes import SmtpFake
from tests.support import TopicLog, eventually, until

pytestmark = pytest.mark.integration

GRACE = timedelta(minutes=5)  # the policy's notice_grace


def series(client: Any, count: int = 4) -> list[VisitBooked]:
    return [
        visit_for(client, start=VISIT + timedelta(days=3 * k), n=k + 1).model_copy(
            update={"sessions_total": count + 1}
        )
        for k in range(count)
    ]


def cancelled(
    visit: VisitBooked, *, cause: CancelCause, by: CancelledBy = "clinic"
) -> VisitCancelled:
    return VisitCancelled(
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=visit.client_id,
        location_id=visit.location_id,
        by=by,
        reason="test",
        cancelled_at=START,
        cause=cause,
    )


def moved(visit: VisitBooked, to: Any, *, previous: Any = None) -> VisitRescheduled:
    return VisitRescheduled(
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=visit.client_id,
        location_id=visit.location_id,
        therapist_id=visit.therapist_id,
        room=visit.room,
        previous_start=previous or visit.start,
        start=to,
        end=to + timedelta(hours=1),
        timezone=visit.timezone,
    )


def revised(visit: VisitBooked, change: str) -> PlanRevised:
    return PlanRevised.model_validate(
        {
            "plan_id": visit.plan_id,
            "version": 2,
            "client_id": visit.client_id,
            "location_id": visit.location_id,
            "condition": "chronic",
            "sessions_total": 6,
            "phases": [
                {
                    "name": "taper",
                    "sessions": 2,
                    "interval_days": 14,
                    "per_week": 0.5,
                    "weeks": 4,
                    "rrule": "FREQ=WEEKLY;INTERVAL=2;COUNT=2",
                }
            ],
            "visit_minutes": 60,
            "protocol": [],
            "home_program": {},
            "review_after_sessions": 2,
            "rationale": [{"rule": "test", "detail": "test"}],
            "intake_id": "intake-test",
            "modality": "nmt",
            "review_by": "2027-04-30",
            "created_at": START.isoformat(),
            "reason": "test",
            "change": change,
            "sessions_done": 4,
        }
    )


async def notices_of(n: Notifier, client_id: str) -> list[dict[str, Any]]:
    return [r for r in await n.store.for_client(client_id) if r["kind"] != "reminder"]


async def mails_to(smtp: SmtpFake, address: str) -> list[Any]:
    return [m.message for m in smtp.received if address in m.rcpt_tos]


async def after_grace(n: Notifier) -> None:
    n.clock.at = n.clock.now() + GRACE + timedelta(seconds=1)


async def test_a_plans_visits_make_one_confirmation_with_the_series_and_what_waits(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("confirm")
    who, address = client.client.client_id, str(client.client.email)
    visits = series(client)
    waiting = BookingWaitlisted(
        plan_id=visits[0].plan_id,
        client_id=who,
        location_id="beaverton",
        sequence=5,
        sessions_total=5,
        reason="no_slot",
        detail="no slot",
    )
    async with SmtpFake() as smtp, notifier_on(infra, _ns(), **smtp_env(smtp)) as n:
        await handle(n, cause(client, at=START), client)
        booked = [(cause(v, at=START), v) for v in visits]
        run = n.runtime
        out = await booked_run(n, booked)
        await handle(n, cause(waiting, at=START), waiting)
        [notice] = await notices_of(n, who)
        assert notice["kind"] == "booking_confirmation" and notice["status"] == "scheduled"
        assert [o.envelope.data["kind"] for o in out if o.envelope.data["kind"] != "reminder"] == [
            "booking_confirmation"
        ]
        # held for the grace period, gathering what else the plan's placement brings
        assert notice["due_at"] == (START + GRACE).isoformat().replace("+00:00", "Z") or (
            notice["due_at"] == (START + GRACE).isoformat()
        )
        assert len(await n.store.members(notice["notification_id"])) == 5
        await after_grace(n)
        await until(lambda: _status(n, notice["notification_id"], "sent"))
        [mail] = await mails_to(smtp, address)
        text = body_of(mail)
        for k in range(4):
            assert f"session {k + 1} of 5" in text
        assert "Monday, March 15 at 9:00 AM PDT" in text  # the first visit, local time
        assert "1 session could not be booked yet" in text
        assert "/calendar.ics?sig=" in text
        assert run.chain.chain.name in str(mail["Subject"])


async def booked_run(n: Notifier, items: Sequence[tuple[Envelope, EventData]]) -> list[Any]:
    """The visits of a plan handled as the consumer hands a run over, published."""
    booked = handlers(n.runtime, n.configured)["visit.booked"]  # type: ignore[arg-type]
    assert isinstance(booked, Batched)
    runs = await booked.many(items)
    out = [o for outputs in runs for o in outputs]
    await n.runtime.publisher.publish(out)
    return out


async def _status(n: Notifier, notification_id: str, status: str) -> bool:
    record = await n.store.get(notification_id)
    return record is not None and record["status"] == status


def _ns() -> str:
    return f"test-notices-{uuid.uuid4().hex[:8]}"


async def test_a_revision_and_the_visits_it_moves_make_one_notice_in_any_order(
    infra: Infra,
) -> None:
    for visits_first in (True, False):
        client = intake("revision")
        who, address = client.client.client_id, str(client.client.email)
        visits = series(client)
        async with SmtpFake() as smtp, notifier_on(infra, _ns(), **smtp_env(smtp)) as n:
            await handle(n, cause(client, at=START), client)
            await booked_run(n, [(cause(v, at=START), v) for v in visits])
            await after_grace(n)
            await eventually(lambda: len(smtp.received) == 1)  # the confirmation
            plan = revised(visits[0], "taper")
            later = VISIT + timedelta(days=20)
            changes: list[EventData] = [
                cancelled(visits[2], cause="plan_revised"),
                cancelled(visits[3], cause="plan_revised"),
                visit_for(client, start=later, n=3).model_copy(
                    update={"visit_id": f"new-{who}", "sessions_total": 6}
                ),
            ]
            ordered = [*changes, plan] if visits_first else [plan, *changes]
            for data in ordered:
                await handle(n, cause(data, at=n.clock.now()), data)
            pending = [r for r in await notices_of(n, who) if r["status"] == "scheduled"]
            assert len(pending) == 1, pending
            assert pending[0]["kind"] == ("visit_change" if visits_first else "plan_update")
            await after_grace(n)
            await eventually(lambda: len(smtp.received) == 2)
            text = body_of((await mails_to(smtp, address))[1])
            assert "further apart" in text  # the taper, in the client's words
            assert "Cancelled:" in text
            assert "Sunday, March 21 at 9:00 AM PDT" in text  # the third visit, cancelled
            assert "New visits:" in text and "Sunday, April 4 at 9:00 AM PDT" in text


async def test_a_quick_undo_sends_nothing(infra: Infra, topics: TopicLog) -> None:
    client = intake("undo")
    who = client.client.client_id
    [visit] = series(client, 1)
    async with SmtpFake() as smtp, notifier_on(infra, _ns(), **smtp_env(smtp)) as n:
        await handle(n, cause(client, at=START), client)
        await booked_run(n, [(cause(visit, at=START), visit)])
        await after_grace(n)
        await eventually(lambda: len(smtp.received) == 1)
        there = visit.start + timedelta(days=1)
        await handle(n, cause(moved(visit, there), at=n.clock.now()), moved(visit, there))
        back = moved(visit, visit.start, previous=there)
        await handle(n, cause(back, at=n.clock.now()), back)
        [undone] = [r for r in await notices_of(n, who) if r["kind"] == "visit_change"]
        await after_grace(n)
        await until(lambda: _status(n, undone["notification_id"], "cancelled"))
        record = await n.store.get(undone["notification_id"])
        assert record is not None and record["reason"] == "undone"
        await topics.wait_for(
            lambda: any(
                e["data"]["notification_id"] == undone["notification_id"]
                for e in topics.for_client("notification.cancelled", who)
            )
        )
        assert len(smtp.received) == 1  # the confirmation only


async def test_the_clients_own_cancel_and_a_kind_switched_off_send_nothing(infra: Infra) -> None:
    client = intake("quiet")
    who = client.client.client_id
    visits = series(client, 2)
    off = demo_chain_with(
        Path(tempfile.mkdtemp(prefix="clinicflow-notices-")),
        "no-confirmations",
        messages={"booking_confirmation": {"send": False}},
    )
    env = {**{"CLINICFLOW_CHAIN_CONFIG": str(off)}}
    async with SmtpFake() as smtp, notifier_on(infra, _ns(), **smtp_env(smtp), **env) as n:
        await handle(n, cause(client, at=START), client)
        await booked_run(n, [(cause(v, at=START), v) for v in visits])
        assert await notices_of(n, who) == []  # no confirmation: switched off
        own = cancelled(visits[0], cause="client", by="client")
        await handle(n, cause(own, at=START), own)
        assert await notices_of(n, who) == []  # the client asked: they know
        theirs = cancelled(visits[1], cause="clinic")
        await handle(n, cause(theirs, at=START), theirs)
        [notice] = await notices_of(n, who)
        assert notice["kind"] == "visit_change"


async def test_a_notice_being_sent_takes_no_more_changes_and_redeliveries_join_nothing(
    infra: Infra,
) -> None:
    client = intake("claimed")
    who = client.client.client_id
    visits = series(client, 3)
    async with SmtpFake() as smtp, notifier_on(infra, _ns(), **smtp_env(smtp)) as n:
        await handle(n, cause(client, at=START), client)
        items = [(cause(v, at=START), v) for v in visits[:2]]
        first = await booked_run(n, items)
        again = await booked_run(n, items)  # redelivered: the same announcement
        assert [o.value for o in again] == [o.value for o in first]
        [notice] = await notices_of(n, who)
        members = await n.store.members(notice["notification_id"])
        assert len(members) == 2
        # a sender claims it; a change now opens the next notice
        due = (START + GRACE).timestamp() + 1
        claimed = await n.store.claim_due(now_epoch=due, lease_s=30, limit=100)
        assert notice["notification_id"] in claimed
        late = cancelled(visits[2], cause="clinic")
        await handle(n, cause(late, at=START), late)
        assert len(await n.store.members(notice["notification_id"])) == 2
        kinds = sorted(r["kind"] for r in await notices_of(n, who))
        assert kinds == ["booking_confirmation", "visit_change"]
        del smtp


async def test_an_accepted_offer_is_confirmed_and_a_completed_course_is_told(
    infra: Infra,
) -> None:
    client = intake("offer")
    who, address = client.client.client_id, str(client.client.email)
    [visit] = series(client, 1)
    offer = WaitlistOffered(
        offer_id=f"offer-{who}",
        visit_id=visit.visit_id,
        freed_visit_id="freed",
        plan_id=visit.plan_id,
        client_id=who,
        location_id="beaverton",
        therapist_id=visit.therapist_id,
        room=1,
        start=visit.start,
        end=visit.end,
        timezone=visit.timezone,
        sequence=1,
        sessions_total=1,
        hold_until=START + timedelta(hours=2),
        offered_at=START,
    )
    done = PlanCompleted(
        plan_id=visit.plan_id,
        version=1,
        client_id=who,
        location_id="beaverton",
        reason="test",
        outcome="course_complete",
        sessions_done=1,
        maintenance="a maintenance visit every 4-6 weeks",
        completed_at=START,
    )
    async with SmtpFake() as smtp, notifier_on(infra, _ns(), **smtp_env(smtp)) as n:
        await handle(n, cause(client, at=START), client)
        await handle(n, cause(offer, at=START), offer)
        await booked_run(n, [(cause(visit, at=START), visit)])
        kinds = {r["kind"] for r in await notices_of(n, who)}
        assert kinds == {"waitlist_offer", "offer_accepted"}
        await after_grace(n)
        await eventually(lambda: len(smtp.received) == 2)
        await handle(n, cause(done, at=n.clock.now()), done)
        await after_grace(n)
        await eventually(lambda: len(smtp.received) == 3)
        text = body_of((await mails_to(smtp, address))[2])
        assert "course of treatment is complete" in text and "maintenance visit" in text
