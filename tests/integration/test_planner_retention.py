"""Finished courses leave the planner's hot state by the clinic's calendar, against the
run's broker and Redis: the sweep removes exactly a retired course's keys and fields
(nothing of the client's other course, nothing of other clients, nothing before the
period), leaves a marker, and afterwards a redelivered intake or visit outcome of the
course publishes nothing while the reads answer as the README says. The footprint of
one plan is measured before and after.

Events are handed to the planner's handlers as its consumer would; the service's clock
is a settable one, so "ninety days have passed" is a fact of the test, not a short
policy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from services.planner import fhir_api
from services.planner.api import router
from services.planner.handlers import handlers
from services.planner.outputs import course_of
from services.planner.retirement import RetirementSweep
from services.planner.review_sweep import ReviewSweep
from services.planner.store import PlanStore
from shared.codec import wrap
from shared.envelope import Envelope, Trace
from shared.events import EventData, IntakeSubmitted
from shared.events.intake import (
    ClientMerged,
    ClientRecord,
    Complaint,
    Contraindication,
    Health,
    Screening,
)
from shared.events.plans import PlanCreated
from shared.events.visits import VisitCompleted
from shared.infra import Infra
from shared.kafka import Outgoing
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import PlannerSettings
from tests.conftest import DEMO_CHAIN
from tests.support import SettableClock

pytestmark = pytest.mark.integration

SUBMITTED = datetime(2027, 3, 1, 17, tzinfo=UTC)
KEEP = timedelta(days=90)  # the demo chain's policy: the default
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}


@dataclass
class Planner:
    runtime: Runtime
    clock: SettableClock
    http: httpx.AsyncClient

    async def receive(self, data: EventData, *, cause: Envelope | None = None) -> list[Outgoing]:
        """Hand an event to the planner as its consumer would (``cause``: the same record
        again); what it produced."""
        cause = cause or self.envelope(data)
        return list(await handlers(self.runtime)[data.event_type](cause, data))

    def envelope(self, data: EventData) -> Envelope:
        return wrap(
            data,
            event_id=str(uuid.uuid4()),
            service="test",
            subject="test",
            trace=Trace(chainid="northwest-nmt", correlationid="test"),
            time=self.clock.now(),
        )

    async def keys(self) -> dict[str, int]:
        """Every key of the planner's namespace and its bytes (``MEMORY USAGE``)."""
        redis = self.runtime.redis
        found = [str(k) async for k in redis.scan_iter(match=self.runtime.keys("*"), count=1000)]
        return {key: int(await redis.memory_usage(key) or 0) for key in found}


@pytest.fixture
async def planner(infra: Infra) -> AsyncIterator[Planner]:
    settings = PlannerSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-retention-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_ENV="test",
    )
    app = build_service(
        service="planner",
        settings=settings,
        description="planner under test",
        routers=[router, fhir_api.router],
    )
    clock = SettableClock(SUBMITTED)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.base.clock = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://planner") as http:
            yield Planner(runtime=runtime, clock=clock, http=http)


def an_intake(client_id: str, *, declined: bool = False) -> IntakeSubmitted:
    """An acute neck: four sessions; ``declined``: a DVT, which screening refers."""
    health = Health(contraindications=[Contraindication(code="dvt")]) if declined else Health()
    return IntakeSubmitted(
        intake_id=f"retention-{uuid.uuid4().hex[:8]}",
        client=ClientRecord(client_id=client_id, name="Retention Client"),
        location_id="beaverton",
        complaints=[
            Complaint(region="neck", intensity=6, qualities=["ache"], onset=date(2027, 2, 1))
        ],
        health=health,
        screening=Screening(outcome="refer" if declined else "clear"),
        submitted_at=SUBMITTED,
    )


def a_visit(plan: PlanCreated, n: int, *, at: datetime) -> VisitCompleted:
    """Visit ``n`` of the plan: pain falls 6 -> 0 over four visits, so the fourth
    completes the course."""
    return VisitCompleted(
        visit_id=f"{plan.plan_id}-{n}",
        plan_id=plan.plan_id,
        client_id=plan.client_id,
        location_id=plan.location_id,
        therapist_id="t-ana",
        pain_before=max(0, 6 - 2 * n),
        pain_after=max(0, 4 - 2 * n),
        completed_at=at,
    )


@dataclass
class Course:
    plan: PlanCreated
    intake: tuple[Envelope, IntakeSubmitted]
    last_visit: tuple[Envelope, VisitCompleted]


async def a_finished_course(planner: Planner, client_id: str) -> Course:
    """A course planned and completed in four visits, the last on 2027-03-08."""
    intake = an_intake(client_id)
    cause = planner.envelope(intake)
    (created,) = await planner.receive(intake, cause=cause)
    plan = PlanCreated.model_validate(created.envelope.data)
    for n in range(plan.sessions_total):
        planner.clock.at = SUBMITTED + timedelta(days=1 + 2 * n)
        visit = a_visit(plan, n, at=planner.clock.at)
        visit_cause = planner.envelope(visit)
        produced = await planner.receive(visit, cause=visit_cause)
    assert [o.envelope.type for o in produced] == ["plan.completed"]
    planner.clock.at = SUBMITTED
    return Course(plan, (cause, intake), (visit_cause, visit))


async def an_active_plan(planner: Planner, client_id: str) -> PlanCreated:
    (created,) = await planner.receive(an_intake(client_id))
    return PlanCreated.model_validate(created.envelope.data)


def of_plan(keys: dict[str, int], plan_id: str) -> set[str]:
    return {key for key in keys if plan_id in key}


async def test_the_sweep_retires_only_the_finished_course_and_only_after_its_period(
    planner: Planner,
) -> None:
    client = f"client-{uuid.uuid4().hex[:6]}"
    finished = await a_finished_course(planner, client)
    ended_at = SUBMITTED + timedelta(days=7)
    ongoing = await an_active_plan(planner, client)  # the same client's next course
    other = await a_finished_course(planner, f"client-{uuid.uuid4().hex[:6]}")
    store = PlanStore(planner.runtime.redis, planner.runtime.keys)
    before_keys = await planner.keys()
    history_before = await store.history(client)
    sweep = RetirementSweep(planner.runtime)

    planner.clock.at = ended_at + KEEP - timedelta(minutes=1)  # not yet
    assert await sweep.once() == []
    assert await planner.keys() == before_keys

    planner.clock.at = ended_at + KEEP + timedelta(minutes=1)
    retired = await sweep.once()
    assert {c.plan_id for c in retired} == {finished.plan.plan_id, other.plan.plan_id}
    (marker,) = [c for c in retired if c.plan_id == finished.plan.plan_id]
    assert (marker.client_id, marker.outcome, marker.location_id) == (
        client,
        "course_complete",
        "beaverton",
    )
    assert marker.ended_at == ended_at
    after = await planner.keys()
    assert of_plan(after, finished.plan.plan_id) == set()  # current, progress, intake...
    assert of_plan(after, ongoing.plan_id) == of_plan(before_keys, ongoing.plan_id)
    history_after = await store.history(client)
    assert history_after == [
        r for r in history_before if (r.get("plan") or {}).get("plan_id") == ongoing.plan_id
    ]
    assert await store.active_plan_id(client) == ongoing.plan_id
    outputs = await planner.runtime.redis.hgetall(planner.runtime.keys("outputs", client))
    assert outputs and all(finished.plan.plan_id not in v for v in outputs.values())
    # the other client's course left nothing but its marker either
    assert not any(
        other.plan.plan_id in k or other.plan.client_id in k for k in after if ("retired" not in k)
    )
    assert await sweep.once() == []  # a second round, or a second instance: nothing


async def test_a_redelivered_old_event_of_a_retired_course_publishes_nothing(
    planner: Planner,
) -> None:
    client = f"client-{uuid.uuid4().hex[:6]}"
    course = await a_finished_course(planner, client)
    planner.clock.at = SUBMITTED + timedelta(days=7) + KEEP + timedelta(days=1)
    assert [c.plan_id for c in await RetirementSweep(planner.runtime).once()] == [
        course.plan.plan_id
    ]
    keys = await planner.keys()

    cause, intake = course.intake
    assert await planner.receive(intake, cause=cause) == []  # the same record again
    assert await planner.receive(intake) == []  # a replay from offset 0: a new record id
    visit_cause, visit = course.last_visit
    assert await planner.receive(visit, cause=visit_cause) == []
    assert await planner.receive(visit) == []
    assert await planner.keys() == keys  # and nothing was written back
    assert await ReviewSweep(planner.runtime).once() == []


async def test_a_declined_course_is_retired_and_its_intake_again_publishes_nothing(
    planner: Planner,
) -> None:
    client = f"client-{uuid.uuid4().hex[:6]}"
    intake = an_intake(client, declined=True)
    cause = planner.envelope(intake)
    (declined,) = await planner.receive(intake, cause=cause)
    assert declined.envelope.type == "plan.declined"
    assert [o.envelope for o in await planner.receive(intake, cause=cause)] == [
        declined.envelope
    ]  # before the period: the same decline again

    planner.clock.at = SUBMITTED + KEEP + timedelta(days=1)
    (marker,) = await RetirementSweep(planner.runtime).once()
    assert (marker.plan_id, marker.outcome) == (course_of(intake.intake_id), "declined")
    assert await planner.receive(intake, cause=cause) == []
    assert [k for k in await planner.keys() if client in k] == [
        planner.runtime.keys("retired-of", client)
    ]


async def test_the_reads_answer_for_a_retired_course_as_documented(planner: Planner) -> None:
    client = f"client-{uuid.uuid4().hex[:6]}"
    course = await a_finished_course(planner, client)
    plan_id = course.plan.plan_id
    ended_at = SUBMITTED + timedelta(days=7)
    planner.clock.at = ended_at + timedelta(days=30)  # within the period: as before
    history = await planner.http.get(f"/v1/clients/{client}/plan/history", headers=FRONT_DESK)
    assert history.status_code == 200
    assert [v["status"] for v in history.json()["versions"]] == ["superseded", "completed"]
    assert history.json()["retired_courses"] == []

    planner.clock.at = ended_at + KEEP + timedelta(days=1)
    await RetirementSweep(planner.runtime).once()
    stub = {
        "plan_id": plan_id,
        "ended_at": "2027-03-08T17:00:00Z",
        "outcome": "course_complete",
        "retained_until": "2027-06-06T17:00:00Z",
        "history": "clinic.plans",
    }
    history = await planner.http.get(f"/v1/clients/{client}/plan/history", headers=FRONT_DESK)
    assert history.status_code == 200
    assert history.json() == {"client_id": client, "versions": [], "retired_courses": [stub]}

    current = await planner.http.get(f"/v1/clients/{client}/plan", headers=FRONT_DESK)
    assert current.status_code == 404
    detail = current.json()["detail"]
    assert plan_id in detail and "2027-06-06" in detail and "clinic.plans" in detail

    read = await planner.http.get(f"/fhir/r4/CarePlan/{plan_id}", headers=FRONT_DESK)
    assert read.status_code == 410
    (issue,) = read.json()["issue"]
    assert issue["code"] == "deleted" and "clinic.plans" in issue["diagnostics"]
    search = await planner.http.get(
        "/fhir/r4/CarePlan", params={"patient": client}, headers=FRONT_DESK
    )
    assert search.status_code == 200 and search.json().get("entry", []) == []

    # another location's key sees neither the stub nor the plan
    elsewhere = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
    assert (
        await planner.http.get(f"/v1/clients/{client}/plan/history", headers=elsewhere)
    ).status_code == 404
    assert (
        await planner.http.get(f"/fhir/r4/CarePlan/{plan_id}", headers=elsewhere)
    ).status_code == 404

    # the client's next course: the history shows it beside the retired one's stub
    ongoing = await an_active_plan(planner, client)
    history = await planner.http.get(f"/v1/clients/{client}/plan/history", headers=FRONT_DESK)
    assert [v["plan"]["plan_id"] for v in history.json()["versions"]] == [ongoing.plan_id]
    assert history.json()["retired_courses"] == [stub]
    current = await planner.http.get(f"/v1/clients/{client}/plan", headers=FRONT_DESK)
    assert current.status_code == 200 and current.json()["plan"]["plan_id"] == ongoing.plan_id


async def test_one_plan_costs_a_few_keys_while_kept_and_a_marker_once_retired(
    planner: Planner,
) -> None:
    """The footprint of one finished four-visit course: every plan version once, what
    each event produced as references, then only the marker."""
    client = f"client-{uuid.uuid4().hex[:6]}"
    course = await a_finished_course(planner, client)
    kept = await planner.keys()
    # the course's own keys: its history, current version, intake, progress and outputs
    mine = {k: b for k, b in kept.items() if client in k or course.plan.plan_id in k}
    assert len(mine) == 5, sorted(mine)
    assert sum(mine.values()) <= 12 * 1024, mine
    planner.clock.at = SUBMITTED + timedelta(days=7) + KEEP + timedelta(days=1)
    await RetirementSweep(planner.runtime).once()
    left = await planner.keys()
    assert set(left) == {
        planner.runtime.keys("retired"),
        planner.runtime.keys("retired-of", client),
    }
    assert sum(left.values()) <= 512, left  # the marker and the client's set of them


def a_merge(survivor: str, retired: str) -> ClientMerged:
    return ClientMerged(
        merge_id=f"merge-{uuid.uuid4().hex[:8]}",
        client_id=survivor,
        merged_client_id=retired,
        location_ids=["beaverton"],
        merged_by="admin-key-digest",
        reason="one person, two records",
        merged_at=SUBMITTED,
    )


async def test_a_merged_clients_courses_are_retired_and_listed_under_the_survivor(
    planner: Planner,
) -> None:
    """One course finished under an id later merged away (swept after the merge), one
    swept before its client was merged: both markers answer under the survivor, and
    the merged id's old events still produce nothing."""
    survivor, before, after = (f"client-{n}-{uuid.uuid4().hex[:6]}" for n in "sba")
    swept_first = await a_finished_course(planner, before)
    planner.clock.at = SUBMITTED + timedelta(days=7) + KEEP + timedelta(days=1)
    (first,) = await RetirementSweep(planner.runtime).once()
    planner.clock.at = SUBMITTED
    merged_first = await a_finished_course(planner, after)
    assert await planner.receive(a_merge(survivor, before)) == []
    assert await planner.receive(a_merge(survivor, after)) == []

    planner.clock.at = SUBMITTED + timedelta(days=7) + KEEP + timedelta(days=1)
    (second,) = await RetirementSweep(planner.runtime).once()
    assert (first.plan_id, second.plan_id) == (swept_first.plan.plan_id, merged_first.plan.plan_id)
    assert second.client_id == survivor
    history = await planner.http.get(f"/v1/clients/{after}/plan/history", headers=FRONT_DESK)
    assert history.json()["client_id"] == survivor
    assert {c["plan_id"] for c in history.json()["retired_courses"]} == {
        swept_first.plan.plan_id,
        merged_first.plan.plan_id,
    }  # both ended on the same day
    visit_cause, visit = merged_first.last_visit
    assert await planner.receive(visit, cause=visit_cause) == []
    left = [k for k in await planner.keys() if after in k or merged_first.plan.plan_id in k]
    assert left == [planner.runtime.keys("alias", after)]  # the merge's, not the course's
