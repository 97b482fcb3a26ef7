"""Finished courses in the notifier, against real Redis, the real broker and a real
SMTP server: the sweep removes a course's notifications once its retention period
(``keep_finished_courses``) has passed, and only those; an old event of the course
redelivered after the sweep arms and sends nothing; the client's notification log
lists the course as retired; a decline's course goes the same way; a merge keeps the
markers with the survivor.

The clock is the test's (a settable clock), so "ninety days later" is a fact of the
test, not of a shortened policy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.notifier.courses import Courses, declined_plan
from services.notifier.handlers import handlers
from services.notifier.store import NotificationStore
from services.planner.domain import build_plan
from shared.aliases import ClientAliases
from shared.chain import Policy
from shared.codec import decode_data, wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, PlanCreated, VisitBooked
from shared.events.plans import PlanCompleted, PlanDeclined, RationaleItem, Referral
from shared.infra import Infra
from shared.kafka import Outgoing
from shared.retention import RetiredCourse
from tests.integration.test_notifier_flow import (
    FRONT_DESK,
    START,
    Notifier,
    completed,
    intake,
    notifier_on,
    smtp_env,
    visit_for,
)
from tests.notifier_fakes import SmtpFake
from tests.support import TopicLog, until

pytestmark = pytest.mark.integration

KEEP = timedelta(days=90)  # the demo chain's policy: the default
ENDED = START + timedelta(days=12)  # the first course's plan.completed
LATER = START + timedelta(days=200)  # the other courses' visits: long after the sweep


def envelope(data: EventData, subject: str) -> Envelope:
    return wrap(
        data,
        event_id=str(uuid.uuid4()),
        service="test",
        subject=subject,
        trace=Trace(chainid="northwest-nmt", correlationid=subject),
        time=START,
    )


async def deliver(n: Notifier, cause: Envelope) -> list[Outgoing]:
    """Hand ``cause`` to the notifier as its consumer would; publish what it made."""
    handle = handlers(n.runtime, n.configured)[cause.type]  # type: ignore[arg-type]
    made = list(await handle(cause, decode_data(cause)))
    await n.runtime.publisher.publish(made)
    return made


async def snapshot(redis: aioredis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under ``prefix`` with its value, whatever its type."""
    found: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        kind = await redis.type(key)
        if kind == "string":
            found[key] = await redis.get(key)
        elif kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "set":
            found[key] = sorted(await redis.smembers(key))
        elif kind == "zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            found[key] = await redis.lrange(key, 0, -1)
    return found


async def idle(n: Notifier) -> None:
    """Wait until the dispatcher has nothing due at the clock's now, nor in flight."""
    redis, keys = n.runtime.redis, n.runtime.keys

    async def nothing_due() -> bool:
        due = await redis.zcount(keys("due"), "-inf", n.clock.now().timestamp())
        return due == 0 and await redis.zcard(keys("inflight")) == 0

    await until(nothing_due)


def visits_of(client: Any, plan: PlanCreated, starts: Sequence[datetime]) -> list[VisitBooked]:
    return [
        visit_for(client, start=start, n=k + 1).model_copy(
            update={"plan_id": plan.plan_id, "visit_id": f"visit-{plan.plan_id}-{k + 1}"}
        )
        for k, start in enumerate(starts)
    ]


def declined_for(client: Any) -> PlanDeclined:
    return PlanDeclined(
        client_id=client.client.client_id,
        intake_id=client.intake_id,
        location_id="beaverton",
        outcome="refer",
        reasons=[RationaleItem(rule="DOMAIN.md 2: deep vein thrombosis", detail="dvt")],
        referral=Referral(recommended=True, to="physician", detail="see a doctor"),
        declined_at=START,
    )


async def test_the_sweep_retires_a_finished_course_and_nothing_else(
    infra: Infra, topics: TopicLog
) -> None:
    namespace = f"test-courses-{uuid.uuid4().hex[:8]}"
    a, b = intake("course-a"), intake("course-b")
    a_id = a.client.client_id
    first = build_plan(a, policy=Policy())
    again = a.model_copy(update={"intake_id": f"{a.intake_id}-2"})  # A's second course
    second, other = build_plan(again, policy=Policy()), build_plan(b, policy=Policy())
    assert isinstance(first, PlanCreated) and isinstance(second, PlanCreated)
    assert isinstance(other, PlanCreated)
    done = visits_of(a, first, [START + timedelta(days=d) for d in (3, 7, 11)])
    active = visits_of(a, second, [LATER, LATER + timedelta(days=4)])
    others = visits_of(b, other, [LATER])
    async with SmtpFake() as smtp, notifier_on(infra, namespace, **smtp_env(smtp)) as n:
        causes = [envelope(e, a_id) for e in (a, first, *done)]
        for cause in [*causes, envelope(b, "b"), envelope(other, "b")]:
            await deliver(n, cause)
        for e in (second, *active, *others):
            await deliver(n, envelope(e, "later"))
        for visit in done:
            n.clock.at = visit.end
            await deliver(n, envelope(completed(visit), a_id))
        ending = PlanCompleted(
            plan_id=first.plan_id,
            version=1,
            client_id=a_id,
            location_id="beaverton",
            reason="course done",
            completed_at=ENDED,
        )
        await deliver(n, envelope(ending, a_id))
        n.clock.at = ENDED + timedelta(days=2)  # aftercare and check-ins all went
        await idle(n)
        sent = len(smtp.received)
        assert sent > 0
        prefix = n.runtime.keys("")
        before = await snapshot(n.runtime.redis, prefix)
        courses = Courses(n.runtime)

        n.clock.at = ENDED + KEEP - timedelta(minutes=1)
        assert await courses.sweep() == 0  # still within the period: all of it stays
        assert await snapshot(n.runtime.redis, prefix) == before

        n.clock.at = ENDED + KEEP + timedelta(minutes=1)
        swept = await asyncio.gather(courses.sweep(), Courses(n.runtime).sweep())
        assert sorted(swept) == [0, 1]  # two instances: the course is swept once
        after = await snapshot(n.runtime.redis, prefix)

        mine = {
            r["notification_id"]
            for r in await n.store.for_client(a_id)
            if (r.get("context") or {}).get("plan_id") == first.plan_id
        }
        assert mine == set()
        gone = set(before) - set(after)
        of_first = {
            k
            for k, v in before.items()
            if ":notification:" in k and first.plan_id in str(v) and second.plan_id not in str(v)
        }
        assert of_first and of_first <= gone
        expected_gone = of_first | {
            prefix + f"{kind}:{first.plan_id}"
            for kind in ("plan", "plan-visits", "batch-open", "plan-confirmed", "batch-of")
        }
        for kind in ("seen-visit", "visit-notifications"):
            expected_gone |= {prefix + f"{kind}:{v.visit_id}" for v in done}
        expected_gone.add(prefix + f"checkin:{a_id}")  # the latest check-in was of it
        # the lists of courses ending: emptied, so gone, or without the course
        expected_gone |= {prefix + "ended", prefix + "course-ending"}
        batches = {
            prefix + f"batch:{k.rsplit(':', 1)[-1]}"
            for k in of_first
            if prefix + f"batch:{k.rsplit(':', 1)[-1]}" in before
        }
        expected_gone |= batches
        expected_gone &= set(before)
        assert gone == expected_gone
        changed = {k for k in after if k in before and after[k] != before[k]}
        assert changed <= {
            prefix + f"client-notifications:{a_id}",
            prefix + f"upcoming:{a_id}",
            prefix + "ended",
            prefix + "course-ending",
        }
        added = set(after) - set(before)
        assert added == {prefix + "retired", prefix + f"retired-of:{a_id}"}
        assert prefix + f"contact:{a_id}" in after  # the client's, not the course's
        marker = await courses.retirement.of(first.plan_id)
        assert marker == RetiredCourse(first.plan_id, a_id, ENDED, "course_complete")

        # the old events of the course, redelivered: nothing armed, nothing sent
        n.clock.at += timedelta(minutes=10)  # past the notice grace: anything armed is due
        for cause in causes[1:]:
            assert await deliver(n, cause) == []
        replay = done[0].model_copy(update={"start": n.clock.now() + timedelta(days=5)})
        assert await deliver(n, envelope(replay, a_id)) == []
        assert await deliver(n, envelope(completed(done[1]), a_id)) == []
        await idle(n)
        assert await snapshot(n.runtime.redis, prefix) == after
        assert len(smtp.received) == sent

        # the read API: the active course's notifications, the retired course's stub
        answer = await n.http.get(f"/v1/clients/{a_id}/notifications", headers=FRONT_DESK)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["retired_courses"] == [
            {
                "plan_id": first.plan_id,
                "ended_at": "2027-03-22T17:00:00Z",
                "outcome": "course_complete",
                "retained_until": "2027-06-20T17:00:00Z",
                "history": "clinic.notifications",
            }
        ]
        listed = {x["notification_id"] for x in body["notifications"]}
        assert listed and listed == {r["notification_id"] for r in await n.store.for_client(a_id)}
        other_answer = await n.http.get(
            f"/v1/clients/{b.client.client_id}/notifications", headers=FRONT_DESK
        )
        assert other_answer.json()["retired_courses"] == []
        await topics.caught_up()


async def test_a_declined_course_leaves_its_referral_after_the_period(
    infra: Infra, topics: TopicLog
) -> None:
    namespace = f"test-courses-{uuid.uuid4().hex[:8]}"
    c = intake("declined")
    c_id = c.client.client_id
    async with SmtpFake() as smtp, notifier_on(infra, namespace, **smtp_env(smtp)) as n:
        await deliver(n, envelope(c, c_id))
        declined = envelope(declined_for(c), c_id)
        [referral] = await deliver(n, declined)
        await smtp.wait_for_mail(1)
        await idle(n)
        plan_id = declined_plan(c.intake_id)
        assert (await n.store.get(referral.envelope.subject))["context"] == {"plan_id": plan_id}

        n.clock.at = START + KEEP + timedelta(minutes=1)
        assert await Courses(n.runtime).sweep() == 1
        assert await n.store.for_client(c_id) == []
        assert await n.store.get(referral.envelope.subject) is None
        assert await n.store.contact(c_id) is not None

        assert await deliver(n, declined) == []  # redelivered: no second referral
        await idle(n)
        assert len(smtp.received) == 1 and await n.store.for_client(c_id) == []

        answer = await n.http.get(f"/v1/clients/{c_id}/notifications", headers=FRONT_DESK)
        assert answer.status_code == 200, answer.text
        assert answer.json()["notifications"] == []
        [stub] = answer.json()["retired_courses"]
        assert stub["plan_id"] == plan_id and stub["outcome"] == "declined"
        elsewhere = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
        hidden = await n.http.get(f"/v1/clients/{c_id}/notifications", headers=elsewhere)
        assert hidden.status_code in (403, 404)
        await topics.caught_up()


async def test_a_merge_keeps_the_retired_courses_with_the_survivor(
    infra: Infra, topics: TopicLog
) -> None:
    namespace = f"test-courses-{uuid.uuid4().hex[:8]}"
    kept, gone = intake("survivor"), intake("merged")
    async with notifier_on(infra, namespace) as n:
        for client in (kept, gone):
            await deliver(n, envelope(client, client.client.client_id))
        await deliver(n, envelope(declined_for(gone), gone.client.client_id))
        n.clock.at = START + KEEP + timedelta(minutes=1)
        assert await Courses(n.runtime).sweep() == 1
        store = NotificationStore(n.runtime.redis, n.runtime.keys)
        aliases = ClientAliases(n.runtime.redis, n.runtime.keys)
        await store.merge(aliases, retired=gone.client.client_id, survivor=kept.client.client_id)
        moved = await Courses(n.runtime).of_client([kept.client.client_id])
        assert [c.plan_id for c in moved] == [declined_plan(gone.intake_id)]
        assert await Courses(n.runtime).of_client([gone.client.client_id]) == []


async def usage(redis: aioredis.Redis, prefix: str, *, leave_out: Sequence[str] = ()) -> int:
    """The bytes Redis holds under ``prefix`` (MEMORY USAGE), but for ``leave_out`` keys."""
    total = 0
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        if not any(key.startswith(prefix + kind) for kind in leave_out):
            total += await redis.memory_usage(key, samples=0) or 0
    return total


async def test_an_active_course_costs_a_bounded_footprint_and_a_finished_one_a_marker(
    infra: Infra, topics: TopicLog
) -> None:
    """Five intakes of six visits each (the plan summary and the booking confirmation
    sent): the notifier's bytes per intake, then what stays of each once retired."""
    namespace = f"test-courses-{uuid.uuid4().hex[:8]}"
    n_intakes = 5
    async with SmtpFake() as smtp, notifier_on(infra, namespace, **smtp_env(smtp)) as n:
        clients = []
        for k in range(n_intakes):
            client = intake(f"footprint-{k}")
            plan = build_plan(client, policy=Policy())
            assert isinstance(plan, PlanCreated)
            starts = [START + timedelta(days=3 + 4 * d) for d in range(6)]
            for e in (client, plan, *visits_of(client, plan, starts)):
                await deliver(n, envelope(e, client.client.client_id))
            clients.append((client, plan))
        n.clock.at = START + timedelta(hours=1)
        await smtp.wait_for_mail(2 * n_intakes)
        await idle(n)
        prefix = n.runtime.keys("")
        rates = ("rate:",)  # send-rate windows: they expire within two windows
        active = await usage(n.runtime.redis, prefix, leave_out=rates) / n_intakes
        assert active <= 31 * 1024  # measured 30.1 KB (41 keys and 39.1 KB before)

        for client, plan in clients:
            ending = PlanCompleted(
                plan_id=plan.plan_id,
                version=1,
                client_id=client.client.client_id,
                location_id="beaverton",
                reason="course done",
                completed_at=n.clock.now(),
            )
            await deliver(n, envelope(ending, client.client.client_id))
        n.clock.at += KEEP + timedelta(days=30)  # every reminder's time has passed too
        await idle(n)
        assert await Courses(n.runtime).sweep() == n_intakes
        contacts = ("contact:", "phone:", "rate:")  # the client's, kept
        finished = await usage(n.runtime.redis, prefix, leave_out=contacts) / n_intakes
        # the marker (about 120 B of the one hash) and the client's set of retired
        # courses (about 280 B for the first, shared by the client's later ones)
        assert finished <= 450
