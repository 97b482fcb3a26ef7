"""A client merge followed by the planner, scheduler and notifier, on the real
broker and Redis: the retired client's plan, visits and messages answer under the
survivor (and under the retired id, as its alias), events that still carry the
retired id are handled under the survivor, the move happens once however often
the merge arrives, and a location's keys read only that location's records.

Events go to each service's handlers as its consumer would hand them over, and
what one service produces is handed to the services that consume it (the
consumer path has its end-to-end test); one settable clock serves all three."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.notifier.api import router as notifier_router
from services.notifier.channels import channels_from
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import handlers as notifier_handlers
from services.planner.api import router as planner_router
from services.planner.handlers import handlers as planner_handlers
from services.scheduler import calendar_api
from services.scheduler.api import router as scheduler_router
from services.scheduler.handlers import handlers as scheduler_handlers
from shared.codec import decode_data, wrap
from shared.envelope import Envelope, Trace
from shared.events import ClientMerged, EventData, IntakeSubmitted, VisitBooked
from shared.events.intake import (
    ClientRecord,
    Complaint,
    ContactConsent,
    Health,
    Preferences,
    Screening,
)
from shared.events.visits import VisitCompleted
from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import NotifierSettings, PlannerSettings, SchedulerSettings
from shared.streams import Handler
from tests.conftest import DEMO_CHAIN
from tests.support import SettableClock, until

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 16, tzinfo=UTC)  # a Monday, 08:00 in Beaverton
ADMIN = {"Authorization": "Bearer demo-admin"}
BEAVERTON = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}


@dataclass
class Service:
    http: httpx.AsyncClient
    runtime: Runtime
    handlers: dict[str, Handler]


@dataclass
class Clinic:
    """The three consumers on one namespace and one clock."""

    planner: Service
    scheduler: Service
    notifier: Service
    clock: SettableClock
    outbox: Path
    published: list[Envelope] = field(default_factory=list)

    async def flow(self, data: EventData, *, event_id: str | None = None) -> list[Envelope]:
        """Hand ``data`` to every service that consumes its type, then what they
        produce to theirs, until nothing new comes out; every envelope produced."""
        produced: list[Envelope] = []
        queue = [envelope_of(data, self.clock.now(), event_id=event_id)]
        while queue:
            envelope = queue.pop(0)
            for service in (self.planner, self.scheduler, self.notifier):
                handle = service.handlers.get(envelope.type)
                if handle is not None:
                    outputs = await handle(envelope, decode_data(envelope))
                    queue += [o.envelope for o in outputs]
                    produced += [o.envelope for o in outputs]
        self.published += produced
        return produced

    async def get(self, service: Service, path: str, headers: dict[str, str]) -> httpx.Response:
        return await service.http.get(path, headers=headers)


def envelope_of(data: EventData, now: datetime, *, event_id: str | None) -> Envelope:
    return wrap(
        data,
        event_id=event_id or str(uuid.uuid4()),
        service="test",
        subject=str(getattr(data, "client_id", "subject")),
        trace=Trace(chainid="northwest-nmt", correlationid=str(uuid.uuid4())),
        time=now,
    )


@asynccontextmanager
async def clinic_on(infra: Infra, tmp_path: Path) -> AsyncIterator[Clinic]:
    common: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "REDIS_URL": infra.redis_url,
        "CLINICFLOW_REDIS_NAMESPACE": f"test-merge-{uuid.uuid4().hex[:8]}",
        "CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN),
        "CLINICFLOW_ENV": "test",
        "API_RATE_LIMIT_PER_MINUTE": 60_000,
        "API_RATE_LIMIT_BURST": 10_000,
    }
    outbox = tmp_path / "outbox.jsonl"
    notifier_settings = NotifierSettings(
        **common, NOTIFIER_OUTBOX_PATH=str(outbox), NOTIFIER_POLL_INTERVAL_S=0.05
    )
    channels = channels_from(notifier_settings)

    async def dispatch(runtime: Runtime) -> None:
        await Dispatcher(runtime, notifier_settings, channels).run()

    apps = {
        "planner": build_service(
            service="planner",
            settings=PlannerSettings(**common),
            description="planner under test",
            routers=[planner_router],
        ),
        "scheduler": build_service(
            service="scheduler",
            settings=SchedulerSettings(**common),
            description="scheduler under test",
            routers=[scheduler_router, calendar_api.router],
        ),
        "notifier": build_service(
            service="notifier",
            settings=notifier_settings,
            description="notifier under test",
            routers=[notifier_router],
            background=[dispatch],
        ),
    }
    factories = {
        "planner": planner_handlers,
        "scheduler": scheduler_handlers,
        "notifier": lambda runtime: notifier_handlers(runtime, frozenset(channels)),  # type: ignore[arg-type]
    }
    clock = SettableClock(START)
    services: dict[str, Service] = {}
    async with AsyncExitStack() as stack:
        for name, app in apps.items():
            services[name] = await stack.enter_async_context(serving(app, clock, factories[name]))
        yield Clinic(**services, clock=clock, outbox=outbox)


@asynccontextmanager
async def serving(app: FastAPI, clock: SettableClock, factory: Any) -> AsyncIterator[Service]:
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.base.clock = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            yield Service(http=http, runtime=runtime, handlers=dict(factory(runtime)))


@pytest.fixture
async def clinic(infra: Infra, tmp_path: Path) -> AsyncIterator[Clinic]:
    async with clinic_on(infra, tmp_path) as running:
        yield running


def an_intake(
    name: str, location_id: str, *, email: str, onset: date, submitted_at: datetime = START
) -> IntakeSubmitted:
    return IntakeSubmitted(
        intake_id=f"merge-{name}-{uuid.uuid4().hex[:6]}",
        client=ClientRecord(
            client_id=f"client-{name}-{uuid.uuid4().hex[:6]}",
            name="Sam Merge",
            email=email,
            contact_consent=ContactConsent(email=True),
        ),
        location_id=location_id,
        complaints=[Complaint(region="neck", intensity=7, qualities=["ache"], onset=onset)],
        health=Health(),
        screening=Screening(outcome="clear"),
        preferences=Preferences(),
        submitted_at=submitted_at,
    )


def merge_of(survivor: str, retired: str) -> ClientMerged:
    return ClientMerged(
        merge_id=f"merge-{uuid.uuid4().hex[:8]}",
        client_id=survivor,
        merged_client_id=retired,
        location_ids=["beaverton", "brooklyn"],
        merged_by="admin-key-digest",
        reason="one person, two records",
        merged_at=START,
    )


def of_type(envelopes: list[Envelope], event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in envelopes if e.type == event_type]


async def reads(clinic: Clinic, client_id: str, headers: dict[str, str]) -> dict[str, Any]:
    """What each read endpoint answers for ``client_id`` (status, body)."""
    paths = {
        "plan": (clinic.planner, f"/v1/clients/{client_id}/plan"),
        "history": (clinic.planner, f"/v1/clients/{client_id}/plan/history"),
        "visits": (clinic.scheduler, f"/v1/clients/{client_id}/visits"),
        "notifications": (clinic.notifier, f"/v1/clients/{client_id}/notifications"),
        "contact": (clinic.notifier, f"/v1/clients/{client_id}/contact-preferences"),
    }
    out = {}
    for name, (service, path) in paths.items():
        response = await clinic.get(service, path, headers)
        out[name] = (response.status_code, response.json())
    return out


async def settled(clinic: Clinic, client_id: str) -> dict[str, Any] | None:
    """``reads`` once no notification of ``client_id`` that is due now still waits."""
    read = await reads(clinic, client_id, ADMIN)
    _, body = read["notifications"]
    now = clinic.clock.now()
    waiting = [
        n
        for n in body.get("notifications", [])
        if n.get("status") == "scheduled" and datetime.fromisoformat(n["due_at"]) <= now
    ]
    return None if waiting else read


async def test_a_merge_moves_plan_visits_and_messages_and_later_events_follow(
    clinic: Clinic,
) -> None:
    # the survivor came to Beaverton; the retired record is the same person at Brooklyn,
    # whose plan came later (so it is the current one after the merge)
    kept = an_intake("kept", "beaverton", email="sam@example.com", onset=date(2026, 6, 1))
    gone = an_intake(
        "gone",
        "brooklyn",
        email="sam.old@example.com",
        onset=date(2026, 7, 1),
        submitted_at=START + timedelta(minutes=5),
    )
    survivor, retired = kept.client.client_id, gone.client.client_id
    first = await clinic.flow(kept)
    clinic.clock.at = START + timedelta(minutes=5)
    second = await clinic.flow(gone)
    [kept_plan] = of_type(first, "plan.created")
    [gone_plan] = of_type(second, "plan.created")
    gone_visits = of_type(second, "visit.booked")
    kept_visits = of_type(first, "visit.booked")
    assert gone_visits and kept_visits
    gone_messages = [n["notification_id"] for n in of_type(second, "notification.scheduled")]
    assert len(gone_messages) > len(gone_visits)  # the plan summary and the reminders

    merged = merge_of(survivor, retired)
    assert await clinic.flow(merged) == []

    # the plan summary is due now: the notifier's dispatcher sends it in its own time,
    # so the reads are compared once nothing due is still waiting to go
    under_survivor = await until(lambda: settled(clinic, survivor))
    under_retired = await reads(clinic, retired, ADMIN)
    assert under_retired == under_survivor
    status, history = under_survivor["history"]
    assert status == 200 and history["client_id"] == survivor
    plans = [v["plan"]["plan_id"] for v in history["versions"]]
    assert plans == [kept_plan["plan_id"], gone_plan["plan_id"]]
    assert [v["plan"]["client_id"] for v in history["versions"]] == [survivor, survivor]
    assert [v.get("merged_from") for v in history["versions"]] == [None, retired]
    # both plans stay active; the current one is the one made last
    assert [v["status"] for v in history["versions"]] == ["active", "active"]
    assert under_survivor["plan"][1]["plan"]["plan_id"] == gone_plan["plan_id"]
    visits = under_survivor["visits"][1]
    assert visits["client_id"] == survivor
    shown = {v["visit_id"]: v["client_id"] for v in visits["visits"]}
    assert {v["visit_id"] for v in gone_visits + kept_visits} == set(shown)
    assert set(shown.values()) == {survivor}
    logged = {n["notification_id"] for n in under_survivor["notifications"][1]["notifications"]}
    assert set(gone_messages) <= logged
    # the survivor's contact and consent win
    status, contact = under_survivor["contact"]
    assert status == 200 and contact["client_id"] == survivor

    # the merge again, redelivered and as a second event: nothing moves twice
    again = await clinic.flow(merged)
    other = await clinic.flow(merge_of(survivor, retired))
    assert again == other == []
    assert await reads(clinic, survivor, ADMIN) == under_survivor
    assert await reads(clinic, retired, ADMIN) == under_survivor

    # an outcome of the retired client's visit, still carrying the retired id
    visit = VisitBooked.model_validate(gone_visits[0])
    clinic.clock.at = visit.end + timedelta(minutes=5)
    late = VisitCompleted(
        visit_id=visit.visit_id,
        plan_id=visit.plan_id,
        client_id=retired,
        location_id=visit.location_id,
        therapist_id=visit.therapist_id,
        pain_before=7,
        pain_after=4,
        techniques=["ischemic_compression"],
        completed_at=visit.end,
    )
    followed = await clinic.flow(late)
    aftercare = of_type(followed, "notification.scheduled")
    assert {n["kind"] for n in aftercare} == {"aftercare", "checkin"}
    assert {n["client_id"] for n in aftercare} == {survivor}
    current = (await clinic.get(clinic.planner, f"/v1/clients/{survivor}/plan", ADMIN)).json()
    assert current["plan"]["plan_id"] == visit.plan_id
    assert current["progress"]["sessions_done"] == 1
    alias = await clinic.get(clinic.planner, f"/v1/clients/{retired}/plan", ADMIN)
    assert alias.json() == current
    log = await clinic.get(clinic.notifier, f"/v1/clients/{survivor}/notifications", ADMIN)
    assert {n["notification_id"] for n in aftercare} <= {
        n["notification_id"] for n in log.json()["notifications"]
    }

    # a command on the retired client's visit now publishes the survivor's id
    next_visit = VisitBooked.model_validate(gone_visits[1])
    cancelled = await clinic.scheduler.http.post(
        f"/v1/visits/{next_visit.visit_id}/cancel",
        json={"by": "client", "reason": "moving house"},
        headers=ADMIN,
    )
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["data"]["client_id"] == survivor


async def test_a_location_reads_only_its_own_records_of_a_merged_client(clinic: Clinic) -> None:
    kept = an_intake("here", "beaverton", email="lee@example.com", onset=date(2026, 6, 1))
    gone = an_intake("there", "brooklyn", email="lee.b@example.com", onset=date(2026, 7, 1))
    survivor, retired = kept.client.client_id, gone.client.client_id
    here = await clinic.flow(kept)
    there = await clinic.flow(gone)
    await clinic.flow(merge_of(survivor, retired))

    for client_id in (survivor, retired):
        beaverton = await reads(clinic, client_id, BEAVERTON)
        brooklyn = await reads(clinic, client_id, BROOKLYN)
        history = beaverton["history"][1]["versions"]
        assert [v["plan"]["location_id"] for v in history] == ["beaverton"]
        assert [v["plan"]["location_id"] for v in brooklyn["history"][1]["versions"]] == [
            "brooklyn"
        ]
        assert (
            beaverton["plan"][1]["plan"]["plan_id"] == of_type(here, "plan.created")[0]["plan_id"]
        )
        assert (
            brooklyn["plan"][1]["plan"]["plan_id"] == of_type(there, "plan.created")[0]["plan_id"]
        )
        for view, location in ((beaverton, "beaverton"), (brooklyn, "brooklyn")):
            assert {v["location_id"] for v in view["visits"][1]["visits"]} == {location}
        here_ids = {n["notification_id"] for n in of_type(here, "notification.scheduled")}
        there_ids = {n["notification_id"] for n in of_type(there, "notification.scheduled")}
        shown_here = {n["notification_id"] for n in beaverton["notifications"][1]["notifications"]}
        shown_there = {n["notification_id"] for n in brooklyn["notifications"][1]["notifications"]}
        assert shown_here == here_ids and shown_there == there_ids
        # the contact kept is the survivor's, recorded at Beaverton
        assert beaverton["contact"][0] == 200 and brooklyn["contact"][0] == 404


async def test_a_retired_clients_reminder_goes_to_the_survivors_address(clinic: Clinic) -> None:
    kept = an_intake("to", "beaverton", email="new.address@example.com", onset=date(2026, 6, 1))
    gone = an_intake("from", "beaverton", email="old.address@example.com", onset=date(2026, 7, 1))
    await clinic.flow(kept)
    produced = await clinic.flow(gone)
    reminders = [n for n in of_type(produced, "notification.scheduled") if n["kind"] == "reminder"]
    assert reminders
    await clinic.flow(merge_of(kept.client.client_id, gone.client.client_id))
    first = min(reminders, key=lambda n: n["due_at"])
    clinic.clock.at = datetime.fromisoformat(first["due_at"]) + timedelta(minutes=1)

    async def sent() -> list[dict[str, Any]]:
        if not clinic.outbox.exists():
            return []
        lines = [json.loads(line) for line in clinic.outbox.read_text().splitlines()]
        return [m for m in lines if m["notification_id"] == first["notification_id"]]

    [message] = await until(sent, timeout=30)
    assert message["to"] == "new.address@example.com"
    assert message["client_id"] == kept.client.client_id
