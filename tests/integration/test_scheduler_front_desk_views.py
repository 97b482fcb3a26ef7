"""The front desk's views through HTTP, on the real broker and Redis: an intake
submitted at the intake service is planned and booked by the planner and the
scheduler consuming the topics, and the day's calendar, the therapist's week, the
client's visits and the waitlist show the client's name (learned from
``intake.submitted``), the therapist's, location's and room's names, the status
(a visit confirmed and one cancelled through the API) and "N of M"; another
location's key gets 404 (another therapist's key 403) as everywhere else.

The three services run in this process on a broker of their own: the run's other
stacks use the same consumer group names and would share this one's records. One
clock for all three (simulated, at real speed, from a fixed Monday), so the week
and the days are known."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.app import build_app as intake_app
from services.planner.app import build_app as planner_app
from services.scheduler import client_names
from services.scheduler.app import build_app as scheduler_app
from shared.aliases import alias_key
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import ClientUpdated
from shared.events.intake import ClientRecord
from shared.infra import Infra, free_port
from shared.runtime import Runtime
from shared.settings import IntakeSettings, PlannerSettings, SchedulerSettings
from tests.conftest import DEMO_CHAIN
from tests.integration.test_intake_broker_down import start_broker
from tests.support import until

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 16, tzinfo=UTC)  # Monday 08:00 in Beaverton
DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ANA = {"Authorization": "Bearer demo-therapist-ana"}
CHLOE = {"Authorization": "Bearer demo-therapist-chloe"}
ADMIN = {"Authorization": "Bearer demo-admin"}
BOOKED_WITHIN_S = 30.0


@dataclass
class Clinic:
    intake: httpx.AsyncClient
    scheduler: httpx.AsyncClient
    runtime: Runtime  # the scheduler's


async def _started(stack: AsyncExitStack, app: FastAPI, name: str) -> httpx.AsyncClient:
    await stack.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    return await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
    )


@pytest.fixture(scope="module")
async def clinic(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Clinic]:
    with ExitStack() as broker:
        bootstrap = await start_broker(broker, free_port(), tmp_path_factory.mktemp("views"))
        env: dict[str, Any] = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": infra.redis_url,
            "CLINICFLOW_REDIS_NAMESPACE": f"test-views-{uuid.uuid4().hex[:8]}",
            "CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN),
            "CLINICFLOW_ENV": "test",
            "CLINICFLOW_CLOCK": f"sim:{START.isoformat()}@1x",
            "CLINICFLOW_CLOCK_ANCHOR": time.time(),
            "API_RATE_LIMIT_PER_MINUTE": 60_000,
            "API_RATE_LIMIT_BURST": 10_000,
        }
        async with AsyncExitStack() as stack:
            await _started(stack, planner_app(PlannerSettings(**env)), "planner")
            app = scheduler_app(SchedulerSettings(**env))
            scheduler = await _started(stack, app, "scheduler")
            intake = await _started(stack, intake_app(IntakeSettings(**env)), "intake")
            yield Clinic(intake=intake, scheduler=scheduler, runtime=app.state.runtime)


def document(name: str, **preferences: Any) -> dict[str, Any]:
    return {
        "location_id": "beaverton",
        "client": {"name": name, "email": f"{uuid.uuid4().hex[:10]}@example.com"},
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 7,
                "qualities": ["ache"],
                "onset": "2026-10-01",
                "improving": True,
            }
        ],
        "preferences": {"modality": "nmt", **preferences},
    }


async def submitted(clinic: Clinic, name: str, **preferences: Any) -> str:
    answer = await clinic.intake.post(
        "/v1/intakes", json=document(name, **preferences), headers=DESK
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["client_id"])


async def visits_of(clinic: Clinic, client_id: str) -> dict[str, Any]:
    answer = await clinic.scheduler.get(f"/v1/clients/{client_id}/visits", headers=DESK)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def booked_and_named(clinic: Clinic, client_id: str) -> dict[str, Any]:
    """The client's visits once booked and the scheduler has learned the name (the
    intake and the plan reach it on different topics)."""

    async def probe() -> dict[str, Any] | None:
        answer = await clinic.scheduler.get(f"/v1/clients/{client_id}/visits", headers=DESK)
        body = answer.json() if answer.status_code == 200 else None
        return body if body and body["client_name"] is not None else None

    return await until(probe, timeout=BOOKED_WITHIN_S)


def by_id(visits: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["visit_id"]: v for v in visits}


async def day_of(clinic: Clinic, day: str, headers: dict[str, str] = DESK) -> httpx.Response:
    return await clinic.scheduler.get(
        "/v1/locations/beaverton/calendar", params={"date": day}, headers=headers
    )


async def week_of(
    clinic: Clinic, therapist_id: str, day: str, headers: dict[str, str] = DESK
) -> httpx.Response:
    return await clinic.scheduler.get(
        f"/v1/therapists/{therapist_id}/week", params={"date": day}, headers=headers
    )


def day_visits(calendar: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return by_id([v for t in calendar["therapists"] for v in t["visits"]])


def week_visits(week: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return by_id([v for d in week["days"] for v in d["visits"]])


async def test_the_front_desk_reads_names_status_and_place_in_the_plan(clinic: Clinic) -> None:
    client_id = await submitted(clinic, "Jo Rivera", therapist_id="t-ana")
    shown = await booked_and_named(clinic, client_id)
    visits = shown["visits"]
    total = visits[0]["sessions_total"]
    assert shown["client_name"] == "Jo Rivera" and len(visits) == total
    assert [v["sequence_label"] for v in visits] == [f"{n} of {total}" for n in range(1, total + 1)]
    for visit in visits:
        assert visit["client_name"] == "Jo Rivera"
        assert (visit["therapist_name"], visit["location_name"]) == ("Ana Ruiz", "Beaverton")
        assert visit["room_name"] == f"Room {visit['room']}"
        assert visit["status"] == "booked" and "cadence_note" in visit
    first, second = visits[0], visits[1]

    confirmed = await clinic.scheduler.post(f"/v1/visits/{first['visit_id']}/confirm", headers=DESK)
    assert confirmed.status_code == 202, confirmed.text
    cancelled = await clinic.scheduler.post(
        f"/v1/visits/{second['visit_id']}/cancel", json={"by": "client"}, headers=DESK
    )
    assert cancelled.status_code == 202, cancelled.text
    statuses = {v["visit_id"]: v["status"] for v in (await visits_of(clinic, client_id))["visits"]}
    assert statuses[first["visit_id"]] == "confirmed"
    assert statuses[second["visit_id"]] == "cancelled"

    # the day's calendar: the held visits of the day with names, status and "N of M"
    day = first["local_start"][:10]
    calendar = await day_of(clinic, day)
    assert calendar.status_code == 200, calendar.text
    on_day = day_visits(calendar.json())[first["visit_id"]]
    assert (on_day["client_name"], on_day["therapist_name"]) == ("Jo Rivera", "Ana Ruiz")
    assert (on_day["location_name"], on_day["room_name"]) == ("Beaverton", first["room_name"])
    assert (on_day["status"], on_day["sequence_label"]) == ("confirmed", f"1 of {total}")
    rooms = {r["room"]: r["room_name"] for r in calendar.json()["rooms"]}
    assert rooms == {1: "Room 1", 2: "Room 2", 3: "Room 3"}
    # the cancelled visit stays on its day, listed apart and marked cancelled
    its_day = (await day_of(clinic, second["local_start"][:10])).json()
    gone = by_id(its_day["cancelled"])[second["visit_id"]]
    assert (gone["status"], gone["client_name"], gone["sequence_label"]) == (
        "cancelled",
        "Jo Rivera",
        f"2 of {total}",
    )
    assert second["visit_id"] not in day_visits(its_day)

    # Ana's week: her own key, a desk of her location; not Chloe's key nor Brooklyn's desk
    week = await week_of(clinic, "t-ana", day, headers=ANA)
    assert week.status_code == 200, week.text
    body = week.json()
    assert body["therapist_name"] == "Ana Ruiz" and len(body["days"]) == 7
    assert date.fromisoformat(body["first_day"]).weekday() == 0
    # the cancelled visit's week lists it apart on its day, marked cancelled
    its_week = (await week_of(clinic, "t-ana", second["local_start"][:10], headers=ANA)).json()
    gone_days = [d for d in its_week["days"] if d["cancelled"]]
    assert [d["day"] for d in gone_days] == [second["local_start"][:10]]
    assert by_id(gone_days[0]["cancelled"])[second["visit_id"]]["status"] == "cancelled"
    assert second["visit_id"] not in week_visits(its_week)
    in_week = week_visits(body)[first["visit_id"]]
    assert (in_week["client_name"], in_week["status"]) == ("Jo Rivera", "confirmed")
    assert (in_week["location_name"], in_week["room_name"]) == ("Beaverton", first["room_name"])
    assert in_week["sequence_label"] == f"1 of {total}"
    assert first["visit_id"] in week_visits((await week_of(clinic, "t-ana", day)).json())
    assert (await week_of(clinic, "t-ana", day, headers=CHLOE)).status_code == 403
    assert (await week_of(clinic, "t-ana", day, headers=BROOKLYN)).status_code == 404
    assert (await week_of(clinic, "t-nobody", day)).status_code == 404

    # another location's key sees none of it
    assert (await day_of(clinic, day, headers=BROOKLYN)).status_code == 404
    elsewhere = f"/v1/clients/{client_id}/visits"
    assert (await clinic.scheduler.get(elsewhere, headers=BROOKLYN)).status_code == 404


async def test_the_waitlist_shows_who_waits_and_why(clinic: Clinic) -> None:
    client_id = await submitted(clinic, "Sam Sunday", days=["sun"])  # Beaverton is shut

    async def waiting() -> dict[str, Any] | None:
        answer = await clinic.scheduler.get("/v1/locations/beaverton/waitlist", headers=DESK)
        assert answer.status_code == 200, answer.text
        found = [w for w in answer.json()["waiting"] if w["client_id"] == client_id]
        return found[0] if found and found[0]["client_name"] else None

    entry = await until(waiting, timeout=BOOKED_WITHIN_S)
    assert entry["client_name"] == "Sam Sunday"
    assert entry["sequence_label"] == f"1 of {entry['sessions_total']}"
    assert entry["reason"] and entry["detail"]
    assert entry["open_offer"] is None and entry["offer"] is None
    listed = await clinic.scheduler.get("/v1/locations/beaverton/waitlist", headers=ADMIN)
    assert listed.json()["location_name"] == "Beaverton"
    other = await clinic.scheduler.get("/v1/locations/beaverton/waitlist", headers=BROOKLYN)
    assert other.status_code == 404


async def test_a_confirmed_name_change_shows_and_a_merge_keeps_the_survivors_name(
    clinic: Clinic,
) -> None:
    client_id = await submitted(clinic, "Lee Old", therapist_id="t-ana")
    await booked_and_named(clinic, client_id)
    runtime = clinic.runtime
    renamed = ClientUpdated(
        change_id=f"change-{uuid.uuid4().hex[:8]}",
        client=ClientRecord(client_id=client_id, name="Lee New"),
        location_id="beaverton",
        changed_by="desk",
        changed_at=START,
    )
    envelope = wrap(
        renamed,
        event_id=str(uuid.uuid4()),
        service="intake",
        subject=client_id,
        trace=Trace(chainid="northwest-nmt", correlationid=renamed.change_id),
        time=START,
    )
    assert await client_names.handlers(runtime)["client.updated"](envelope, renamed) == []
    shown = await visits_of(clinic, client_id)
    assert shown["client_name"] == "Lee New"
    assert {v["client_name"] for v in shown["visits"]} == {"Lee New"}

    # the survivor keeps its name; a survivor without one takes the retired one's; an
    # intake still naming a retired id never renames the survivor
    names = client_names.ClientNames(runtime.redis, runtime.keys)
    retired, nameless = f"r-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"
    await names.learned(retired, "Lee Duplicate")
    await names.merged(retired=retired, survivor=client_id)
    await names.merged(retired=retired, survivor=nameless)
    await runtime.redis.set(alias_key(runtime.keys, retired), client_id)
    await names.learned(retired, "Lee Late Intake")
    assert await names.of([client_id, nameless]) == {
        client_id: "Lee New",
        nameless: "Lee Duplicate",
    }
