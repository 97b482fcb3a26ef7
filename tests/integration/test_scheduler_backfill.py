"""Waitlist and backfill against the real broker and Redis: a cancelled visit's
slot is offered to the longest-waiting plan that fits, held for the policy's
hold, passed on when the hold lapses or the client declines, and accepting in
time books it and the rest of the plan after it.

The chain is one small clinic: one therapist, one room, Mondays 09:00-10:00,
a 15-day horizon. From Monday 2027-03-01 08:00 local, the first plan takes the
two Mondays in reach (03-08 and 03-15, the second already in daylight time) and
every other plan waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shared import links
from shared.chain import load_chain_config
from shared.events.plans import PlanCompleted, PlanCreated
from shared.infra import Infra
from tests.integration.test_scheduler_visits import (
    START,
    Scheduler,
    a_plan,
    scheduler_on,
)
from tests.support import TopicLog, until

pytestmark = pytest.mark.integration

T = TypeVar("T")

DESK = {"Authorization": "Bearer tiny-frontdesk-key"}
ELSEWHERE = {"Authorization": "Bearer other-frontdesk-key"}
ADMIN_KEY = {"Authorization": "Bearer tiny-admin-key-0001"}

CHAIN = """
chain: {id: waitlist-test, name: Waitlist Test Clinic}
api_keys:
  - {key: tiny-frontdesk-key, role: frontdesk, locations: [tiny]}
  - {key: other-frontdesk-key, role: frontdesk, locations: [other]}
  - {key: tiny-admin-key-0001, role: admin, locations: ["*"]}
locations:
  - id: tiny
    name: Tiny Clinic
    timezone: America/Los_Angeles
    address: 1 Main St, Beaverton, OR 97005
    phone: "+15035550199"
    hours: {mon: ["09:00-10:00"]}
    rooms: 1
  - id: other
    name: Other Clinic
    timezone: America/New_York
    address: 2 Main St, Brooklyn, NY 11201
    phone: "+17185550199"
    hours: {mon: ["09:00-17:00"]}
    rooms: 1
therapists:
  - {id: t-solo, name: Solo Therapist, locations: [tiny], skills: [nmt]}
  - {id: t-other, name: Other Therapist, locations: [other], skills: [nmt]}
policy: {horizon: P15D, waitlist_hold: PT2H}
"""


@pytest.fixture
async def clinic(infra: Infra, tmp_path: Path) -> AsyncIterator[Scheduler]:
    chain = tmp_path / "chain.yaml"
    chain.write_text(CHAIN)
    load_chain_config(chain)  # the test's own chain must be valid
    async with scheduler_on(
        infra, infra.kafka_bootstrap_servers, offering=True, chain=chain
    ) as running:
        yield running


def waiting_plan(n: str) -> PlanCreated:
    return a_plan(n).model_copy(update={"location_id": "tiny"})


async def waitlist(clinic: Scheduler) -> dict[str, dict[str, Any]]:
    answer = await clinic.http.get("/v1/locations/tiny/waitlist", headers=DESK)
    assert answer.status_code == 200, answer.text
    return {w["plan_id"]: w for w in answer.json()["waiting"]}


async def offered_to(clinic: Scheduler, plan_id: str) -> str:
    """Wait for the offer round to offer a slot to ``plan_id``; the offer id."""

    async def probe() -> str | None:
        offer: str | None = (await waitlist(clinic)).get(plan_id, {}).get("open_offer")
        return offer

    return await until(probe)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sig(clinic: Scheduler, offer_id: str) -> str:
    secret = clinic.runtime.base.settings.link_secret.get_secret_value()
    return links.sign(secret, "offer", offer_id, expires=START + timedelta(days=180))


async def three_plans(clinic: Scheduler) -> tuple[PlanCreated, PlanCreated, PlanCreated]:
    """A books both Mondays; B, then a minute later C, wait from session 1."""
    plans = []
    for minute, name in enumerate(("a", "b", "c")):
        clinic.clock.at = START + timedelta(minutes=minute)
        plan = waiting_plan(name)
        await clinic.receive(plan)
        plans.append(plan)
    return plans[0], plans[1], plans[2]


async def test_a_freed_slot_is_held_for_the_longest_waiting_then_passed_on_when_the_hold_lapses(
    clinic: Scheduler, topics: TopicLog
) -> None:
    a, b, c = await three_plans(clinic)
    shown = await waitlist(clinic)
    assert [shown[p.plan_id]["sequence"] for p in (a, b, c)] == [3, 1, 1]

    answer = await clinic.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)
    first, second = answer.json()["visits"][:2]
    assert [first["local_start"][:16], second["local_start"][:16]] == [
        "2027-03-08T09:00",
        "2027-03-15T09:00",  # 09:00 on the wall clock across the DST change of 03-14
    ]

    clinic.clock.at = START + timedelta(minutes=5)
    cancelled = await clinic.http.post(
        f"/v1/visits/{first['visit_id']}/cancel", json={"by": "client"}, headers=DESK
    )
    assert cancelled.status_code == 202, cancelled.text

    # B has waited longest: the slot is offered to B and held for two hours
    offer_b = await offered_to(clinic, b.plan_id)
    event = (
        await topics.wait_for(
            lambda: [e for e in topics.events(type="waitlist.offered") if e["subject"] == offer_b]
        )
    )[0]
    assert event["data"]["client_id"] == b.client_id and event["data"]["sequence"] == 1
    assert at(event["data"]["start"]) == at(first["start"])
    assert at(event["data"]["hold_until"]) == clinic.clock.at + timedelta(hours=2)
    assert event["data"]["freed_visit_id"] == first["visit_id"]
    day = await clinic.http.get("/v1/locations/tiny/calendar?date=2027-03-08", headers=DESK)
    (held,) = day.json()["rooms"][0]["visits"]
    assert held["offered"] is True and held["client_id"] == b.client_id

    # the hold lapses: B can no longer take it, and C is offered the same slot
    clinic.clock.at = START + timedelta(minutes=5, hours=2, seconds=1)
    offer_c = await offered_to(clinic, c.plan_id)
    assert offer_c != offer_b
    late = await clinic.http.post(
        f"/v1/waitlist-offers/{offer_b}/accept", params={"sig": sig(clinic, offer_b)}
    )
    assert late.status_code == 409 and "lapsed" in late.json()["detail"]
    assert (await waitlist(clinic))[b.plan_id]["open_offer"] is None

    # a signature for another offer, or a key of another location, opens nothing
    forged = await clinic.http.post(
        f"/v1/waitlist-offers/{offer_c}/accept", params={"sig": sig(clinic, offer_b)}
    )
    assert forged.status_code == 401
    foreign = await clinic.http.post(f"/v1/waitlist-offers/{offer_c}/accept", headers=ELSEWHERE)
    assert foreign.status_code == 404

    # C accepts from the message's link: the visit is booked, and the rest of C's
    # plan after it is booked or keeps waiting (the next Monday is A's)
    accepted = await clinic.http.post(
        f"/v1/waitlist-offers/{offer_c}/accept", params={"sig": sig(clinic, offer_c)}
    )
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["state"] == "accepted" and body["booked"] == [body["visit_id"]]
    again = await clinic.http.post(
        f"/v1/waitlist-offers/{offer_c}/accept", params={"sig": sig(clinic, offer_c)}
    )
    assert again.status_code == 200 and again.json()["booked"] == body["booked"]

    on_topic = await topics.wait_for(
        lambda: [e for e in topics.events(type="visit.booked") if e["subject"] == body["visit_id"]]
    )
    assert len(on_topic) == 1 and on_topic[0]["data"]["client_id"] == c.client_id
    assert on_topic[0]["correlationid"] == c.plan_id  # the plan's story
    visits_c = await clinic.http.get(f"/v1/clients/{c.client_id}/visits", headers=DESK)
    assert [(v["status"], v["sequence"]) for v in visits_c.json()["visits"]] == [("booked", 1)]
    visits_b = await clinic.http.get(f"/v1/clients/{b.client_id}/visits", headers=DESK)
    assert visits_b.json()["visits"] == []  # the lapsed offer was never B's visit
    shown = await waitlist(clinic)
    assert shown[c.plan_id]["sequence"] == 2 and shown[b.plan_id]["sequence"] == 1
    day = await clinic.http.get("/v1/locations/tiny/calendar?date=2027-03-08", headers=DESK)
    (taken,) = day.json()["rooms"][0]["visits"]
    assert taken["offered"] is False and taken["client_id"] == c.client_id
    # exactly one offer per (slot, client) went out
    await topics.caught_up()
    offers = [e["subject"] for e in topics.events(type="waitlist.offered")]
    assert sorted(s for s in offers if s in (offer_b, offer_c)) == sorted([offer_b, offer_c])


async def test_a_decline_passes_the_slot_on_and_a_completed_plan_withdraws_its_offer(
    clinic: Scheduler, topics: TopicLog
) -> None:
    a, b, c = await three_plans(clinic)
    answer = await clinic.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)
    first = answer.json()["visits"][0]

    clinic.clock.at = START + timedelta(minutes=5)
    cancelled = await clinic.http.post(
        f"/v1/visits/{first['visit_id']}/cancel", json={"by": "clinic"}, headers=DESK
    )
    assert cancelled.status_code == 202
    offer_b = await offered_to(clinic, b.plan_id)

    declined = await clinic.http.post(f"/v1/waitlist-offers/{offer_b}/decline", headers=DESK)
    assert declined.status_code == 202 and declined.json()["state"] == "declined"
    repeat = await clinic.http.post(f"/v1/waitlist-offers/{offer_b}/decline", headers=DESK)
    assert repeat.status_code == 200
    refused = await clinic.http.post(f"/v1/waitlist-offers/{offer_b}/accept", headers=DESK)
    assert refused.status_code == 409 and "declined" in refused.json()["detail"]
    offer_c = await offered_to(clinic, c.plan_id)

    # C's plan completes (say the client stopped): its offer is withdrawn, the plan
    # no longer waits, and nobody is left for the slot
    clinic.clock.at = START + timedelta(minutes=10)
    done = PlanCompleted(
        plan_id=c.plan_id,
        client_id=c.client_id,
        location_id="tiny",
        version=1,
        reason="the client stopped the course",
        outcome="goals_met",
        sessions_done=0,
        completed_at=clinic.clock.at,
    )
    await clinic.receive(done)
    withdrawn = await clinic.http.get(f"/v1/waitlist-offers/{offer_c}", headers=DESK)
    assert withdrawn.json()["state"] == "withdrawn"
    assert c.plan_id not in await waitlist(clinic)

    async def slot_done() -> bool:
        due = await clinic.runtime.redis.zcard(clinic.runtime.keys("offers-due"))
        return due == 0

    await until(slot_done)
    assert (await waitlist(clinic))[b.plan_id]["open_offer"] is None
    day = await clinic.http.get("/v1/locations/tiny/calendar?date=2027-03-08", headers=DESK)
    assert day.json()["rooms"][0]["visits"] == []  # the slot is free for any booking


async def test_accepting_books_the_rest_of_the_plan_after_the_offered_visit(
    clinic: Scheduler, topics: TopicLog
) -> None:
    clinic.clock.at = START
    a = waiting_plan("first")
    await clinic.receive(a)
    clinic.clock.at = START + timedelta(minutes=1)
    b = waiting_plan("second")
    await clinic.receive(b)

    # A's course ends before it began: both Mondays are freed at once. One plan
    # holds one offer at a time, so B is offered the first and nobody the second.
    clinic.clock.at = START + timedelta(minutes=5)
    ended = PlanCompleted(
        plan_id=a.plan_id,
        version=1,
        client_id=a.client_id,
        location_id="tiny",
        reason="the client moved away",
        sessions_done=0,
        completed_at=clinic.clock.at,
    )
    cancelled = [e for e in await clinic.receive(ended) if e["type"] == "visit.cancelled"]
    assert len(cancelled) == 2
    offer = await offered_to(clinic, b.plan_id)

    async def rounds_done() -> bool:
        return await clinic.runtime.redis.zcard(clinic.runtime.keys("offers-due")) == 1

    await until(rounds_done)  # only the held slot is still due (at the end of its hold)
    offers = await topics.wait_for(lambda: topics.for_client("waitlist.offered", b.client_id))
    assert [e["subject"] for e in offers] == [offer]

    accepted = await clinic.http.post(f"/v1/waitlist-offers/{offer}/accept", headers=DESK)
    assert accepted.status_code == 202, accepted.text
    visits = await clinic.http.get(f"/v1/clients/{b.client_id}/visits", headers=DESK)
    shown = [(v["sequence"], v["local_start"][:16], v["status"]) for v in visits.json()["visits"]]
    assert shown == [(1, "2027-03-08T09:00", "booked"), (2, "2027-03-15T09:00", "booked")]
    assert accepted.json()["booked"] == [v["visit_id"] for v in visits.json()["visits"]]
    assert (await waitlist(clinic))[b.plan_id]["sequence"] == 3  # beyond the horizon
    on_topic = await topics.wait_for(
        lambda: (
            len(topics.for_client("visit.booked", b.client_id)) == 2
            and topics.for_client("visit.booked", b.client_id)
        )
    )
    assert sorted(e["data"]["sequence"] for e in on_topic) == [1, 2]


async def test_a_visit_moved_away_frees_its_old_time_for_the_waitlist(
    clinic: Scheduler, topics: TopicLog
) -> None:
    clinic.clock.at = START
    a = waiting_plan("mover")
    await clinic.receive(a)
    clinic.clock.at = START + timedelta(minutes=1)
    b = waiting_plan("waiter")
    await clinic.receive(b)
    answer = await clinic.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)
    second = answer.json()["visits"][1]

    # Sunday 03-07, 10:00: the horizon now reaches Monday 03-22
    clinic.clock.at = START + timedelta(days=6, hours=2)
    moved = await clinic.http.post(
        f"/v1/visits/{second['visit_id']}/reschedule", json={}, headers=DESK
    )
    assert moved.status_code == 202, moved.text
    assert at(moved.json()["data"]["start"]) == at(second["start"]) + timedelta(days=7)

    offer = await offered_to(clinic, b.plan_id)
    shown = await clinic.http.get(f"/v1/waitlist-offers/{offer}", headers=DESK)
    assert shown.json()["state"] == "open"
    assert at(shown.json()["start"]) == at(second["start"])  # A's old time
    assert shown.json()["local_start"].startswith("2027-03-15T09:00")


async def test_a_closure_over_an_offered_slot_withdraws_the_offer(
    clinic: Scheduler, topics: TopicLog
) -> None:
    a, b, c = await three_plans(clinic)
    answer = await clinic.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)
    first = answer.json()["visits"][0]
    clinic.clock.at = START + timedelta(minutes=5)
    cancelled = await clinic.http.post(
        f"/v1/visits/{first['visit_id']}/cancel", json={"by": "clinic"}, headers=DESK
    )
    assert cancelled.status_code == 202
    offer_b = await offered_to(clinic, b.plan_id)

    # the clinic closes that Monday: the held slot goes, and nobody is offered it again
    day = first["local_start"][:10]
    closed = await clinic.http.post(
        "/v1/directory/closures",
        json={"location_id": "tiny", "start_date": day, "end_date": day},
        headers=ADMIN_KEY,
    )
    assert closed.status_code == 201, closed.text
    withdrawn = await clinic.http.get(f"/v1/waitlist-offers/{offer_b}", headers=DESK)
    assert withdrawn.json()["state"] == "withdrawn"

    async def slot_done() -> bool:
        due = await clinic.runtime.redis.zcard(clinic.runtime.keys("offers-due"))
        return due == 0

    await until(slot_done)
    shown = await waitlist(clinic)
    assert shown[b.plan_id]["open_offer"] is None and shown[c.plan_id]["open_offer"] is None
    calendar = await clinic.http.get(f"/v1/locations/tiny/calendar?date={day}", headers=DESK)
    assert calendar.json()["closed"] is True
    assert calendar.json()["rooms"][0]["visits"] == []
